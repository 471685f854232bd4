"""Tasks: generated offline and deterministically from a seed. Importing this registers them all."""

# Importing a task module registers its tasks: copy/reverse/sort/recall (synthetic), then one module per task.
from ablate.tasks import coref, listops, scan, synthetic, translate, tsv  # noqa: F401
from ablate.tasks.base import TASKS, DecodeLimit, Split, TaskConfig, TaskData, build_task, task_config_class
from ablate.tasks.vocab import Vocab

__all__ = ["TASKS", "DecodeLimit", "Split", "TaskConfig", "TaskData", "Vocab", "build_task", "task_config_class"]
