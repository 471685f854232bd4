"""Shared test fixtures. Keep each section small and clearly named."""

from __future__ import annotations

import signal
from dataclasses import fields
from pathlib import Path

import pytest

# A suite started in the background by a script (`make test &`, `nohup`) inherits SIGINT ignored, and so do
# the drivers it starts: the Ctrl-C tests would then see no interrupt at all. Deliver it as a terminal would.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# ---------------------------------------------------------------- model test helpers
# Tiny tasks and tiny models (dropout 0, d_model <= 64, 1-2 layers) so every model test runs in seconds.

# Small but non-trivial sizes per task; a task not listed here gets only the split sizes.
TINY_TASK_KW: dict[str, dict] = {
    "copy": {"vocab_size": 6, "min_len": 2, "max_len": 6},
    "reverse": {"vocab_size": 6, "min_len": 2, "max_len": 6},
    "sort": {"vocab_size": 6, "min_len": 2, "max_len": 6},
    "recall": {"vocab_size": 8, "min_len": 2, "max_len": 3},
    "listops": {"min_len": 5, "max_len": 30, "max_depth": 3},
    "translate": {"min_len": 5, "max_len": 9},
    "tsv": {"n_train": 0, "n_val": 0, "n_test": 0},
}

# Tiny toggles per preset; a key the preset does not take is left out (resolve would note it).
TINY_MODEL_KW: dict[str, dict] = {
    "mlp": {"d_model": 16, "d_ff": 64, "n_layers": 1},
    "cnn": {"d_model": 32, "n_layers": 3, "kernel_size": 3},
    "rnn": {"d_model": 32, "n_layers": 1},
    "gru": {"d_model": 32, "n_layers": 1},
    "lstm": {"d_model": 32, "n_layers": 1},
    "seq2seq": {"d_model": 32, "n_layers": 1},
    "seq2seq_attention": {"d_model": 32, "n_layers": 1},
    "transformer": {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64},
    "ssm": {"d_model": 32, "n_layers": 1, "d_state": 8},
}


def _write_tsv(path: Path) -> Path:
    """A small word-level source<TAB>target file: target = source reversed, plus a marker word."""
    import random

    rng = random.Random(0)
    words = [f"w{i}" for i in range(8)]
    lines = []
    for _ in range(60):
        src = [rng.choice(words) for _ in range(rng.randint(2, 5))]
        lines.append(" ".join(src) + "\t" + " ".join(["out", *src[::-1]]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_task(tmp_path_factory):
    """tiny_task(name, **overrides) -> TaskData, built once per distinct (name, overrides)."""
    from ablate.tasks import build_task, task_config_class

    cache: dict = {}
    tsv_path = _write_tsv(tmp_path_factory.mktemp("tsv") / "pairs.tsv")

    def make(name: str, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            cls = task_config_class(name)
            names = {f.name for f in fields(cls)}
            args = {"name": name, "n_train": 16, "n_val": 8, "n_test": 8, "seed": 0}
            args.update({k: v for k, v in TINY_TASK_KW.get(name, {}).items() if k in names})
            if name == "tsv":
                args["path"] = str(tsv_path)
            args.update(kw)
            cache[key] = build_task(cls(**args))
        return cache[key]

    return make


@pytest.fixture(scope="session")
def batch_of():
    """batch_of(split, n) -> the harness's batch dict (src, src_len, tgt, tgt_len, tgt_in) of the first n rows."""
    import torch

    from ablate.train.data import make_batch

    def make(split, n: int | None = None):
        n = len(split) if n is None else min(n, len(split))
        return make_batch(split, torch.arange(n))

    return make


@pytest.fixture(scope="session")
def tiny_model():
    """tiny_model(arch, data_or_info, seed=0, **toggles) -> a small model in eval mode (dropout is 0 anyway)."""
    import torch

    from ablate.models import TaskInfo, build_model, model_config
    from ablate.train.sizing import info_of

    def make(arch: str, data, seed: int = 0, **toggles):
        info = data if isinstance(data, TaskInfo) else info_of(data)
        kw = {"dropout": 0.0, **TINY_MODEL_KW.get(arch, {}), **toggles}
        torch.manual_seed(seed)
        return build_model(model_config({"arch": arch, **kw})[0], info).eval()

    return make


@pytest.fixture(scope="session")
def assert_greedy():
    """assert_greedy(model, src, src_len, gen): gen (B, L) is what greedy decoding must give.

    Re-runs the whole prefix each step, teacher-forced along gen's own tokens: every token up to the first <eos>
    is the argmax of model(src, src_len, <bos> + the tokens before it) at the last position (near-ties within
    tol may go either way, so float noise between two correct code paths cannot fail it); after <eos>, <pad>.
    """
    import torch

    from ablate.tasks.vocab import Vocab

    def check(model, src, src_len, gen, tol: float = 1e-4):
        B, L = gen.shape
        ys = torch.full((B, 1), Vocab.bos, dtype=torch.long)
        live = torch.ones(B, dtype=torch.bool)
        with torch.no_grad():
            for t in range(L):
                logits = model(src, src_len, ys)[:, -1]
                gap = logits.max(-1).values - logits.gather(1, gen[:, t : t + 1]).squeeze(1)
                bad = live & (gap > tol)
                assert not bad.any(), f"step {t}: rows {bad.nonzero().flatten().tolist()} are not the argmax " \
                                      f"(gaps {gap[bad].tolist()})"
                assert (gen[~live, t] == Vocab.pad).all(), f"step {t}: a token after <eos> is not <pad>"
                live &= gen[:, t] != Vocab.eos
                ys = torch.cat([ys, gen[:, t : t + 1]], 1)

    return check


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models run fastest on one thread (no spin/wait on a loaded CI box); restored afterwards.

    Use with `pytestmark = pytest.mark.usefixtures("torch_one_thread")`.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- subword cache
@pytest.fixture(autouse=True, scope="session")
def _subword_cache(tmp_path_factory):
    """Sentencepiece models trained by tests go to a temporary cache, never the user's ~/.cache."""
    import os

    old = os.environ.get("ABLATE_CACHE_DIR")
    os.environ["ABLATE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("ABLATE_CACHE_DIR", None)
    else:
        os.environ["ABLATE_CACHE_DIR"] = old


# ---------------------------------------------------------------- a run killed mid-training, then resumed
class Interrupted(Exception):
    """Raised in place of a kill, right after the resume checkpoint of a chosen validation is written."""


@pytest.fixture
def fit_interrupted(monkeypatch):
    """fit(cfg, run_dir) stopped right after its n-th validation's resume checkpoint (as a kill would stop it), then
    run again in the same directory: returns the resumed run's result."""
    from ablate.train import checkpointing
    from ablate.train.fit import fit

    def run(cfg, run_dir: Path, after: int) -> dict:
        import dataclasses

        # a resume state at every validation (not once per train.resume_every_s): the kill lands after a chosen one
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume_every_s=0))
        real = checkpointing.ResumeCheckpoint.on_validation_end
        saves: list[int] = []

        def stop(self, trainer, pl_module):
            real(self, trainer, pl_module)
            saves.append(trainer.global_step)
            if len(saves) == after:
                raise Interrupted

        monkeypatch.setattr(checkpointing.ResumeCheckpoint, "on_validation_end", stop)
        with pytest.raises(Interrupted):
            fit(cfg, run_dir)
        monkeypatch.setattr(checkpointing.ResumeCheckpoint, "on_validation_end", real)
        return fit(cfg, run_dir)

    return run
