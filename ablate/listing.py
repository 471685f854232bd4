"""`ablate list`: every architecture, component and task, with its options, all read from the registries."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields, is_dataclass

from ablate.models import ARCHS
from ablate.registry import Registry
from ablate.structured import choices_of, default_of
from ablate.tasks import TASKS


def _registry(title: str, reg: Registry) -> list[str]:
    lines = [f"{title}:"]
    for name in reg.names():
        lines.append(f"  {name:<20} {reg.meta(name).get('help', '')}")
    return lines


def arch_options(arch: str) -> list[str]:
    """One line per option of an arch's config: name=default [choices]  help."""
    cls = ARCHS.meta(arch)["config"]
    lines = []
    for f in fields(cls):
        if f.name == "arch":
            continue
        default = default_of(cls, f.name)
        shown = "auto" if default is None else default
        choices = choices_of(cls, f.name)
        opt = f"{f.name}={shown}" + (f" [{'|'.join(map(str, choices))}]" if choices else "")
        lines.append(f"      {opt:<36} {f.metadata.get('help', '')}")
    return lines


def listing() -> str:
    from ablate.experiment.executors import EXECUTORS
    from ablate.models import ATTENTION, DECODERS, ENCODERS, POSITIONAL

    lines = ["architectures (model.arch) and their options (default [choices]; other archs' options do not apply):"]
    for name in ARCHS.names():
        lines.append(f"  {name:<20} {ARCHS.meta(name).get('help', '')}")
        lines += arch_options(name)
    lines.append("")
    for title, reg in (("positional encodings (model.pos_encoding)", POSITIONAL), ("attention (model.attention)",
                                                                                   ATTENTION),
                       ("encoders", ENCODERS), ("decoders", DECODERS), ("executors (--executor)", EXECUTORS)):
        lines += _registry(title, reg) + [""]
    lines += section_options() + [""]
    lines.append("tasks (task.name) and their options:")
    for name in TASKS.names():
        meta = TASKS.meta(name)
        lines.append(f"  {name:<20} [{meta.get('kind', 'seq2seq')}] {meta.get('help', '')}")
        opts = [f"{f.name}={_default(f)}" for f in fields(meta["config"]) if f.name != "name"]
        lines.append(f"  {'':<20}   {', '.join(opts)}")
    return "\n".join(lines)


def _default(f) -> str:
    """A field's default as the YAML a user would write (nested options as {key: value, ...})."""
    if f.default is not MISSING:
        return str(f.default)
    if f.default_factory is not MISSING:
        value = f.default_factory()
        if is_dataclass(value):
            return "{" + ", ".join(f"{k}: {v}" for k, v in asdict(value).items()) + "}"
        return str(value)
    return "?"


def section_options() -> list[str]:
    """The train, eval and logger options, one line each: key=default [choices]  help (nested: logger.wandb.*)."""
    from ablate.config import SECTIONS

    lines = []
    for section in ("train", "eval", "logger"):
        lines.append(f"{section} options (default [choices]):")
        lines += _options(SECTIONS[section], section)
    return lines


def _options(cls: type, prefix: str) -> list[str]:
    lines = []
    for f in fields(cls):
        value = f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default
        if is_dataclass(value):
            lines += _options(type(value), f"{prefix}.{f.name}")
            continue
        choices = choices_of(cls, f.name)
        opt = f"{prefix}.{f.name}={'unset' if value is None else value}" + (
            f" [{'|'.join(map(str, choices))}]" if choices else "")
        lines.append(f"  {opt:<38} {f.metadata.get('help', '')}".rstrip())
    return lines
