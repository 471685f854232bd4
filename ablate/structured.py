"""Structured config sections: OmegaConf dataclasses whose fields carry their own help and checks.

    @dataclass
    class MyConfig:
        width: int = option(64, "hidden size", minimum=1)
        kind: str = option("a", "which one", choices=["a", "b"])     # or choices=lambda: REGISTRY.names()

structured() merges a mapping onto such a class (unknown keys and wrong types reported by name);
field_errors() checks the values against each field's declared choices and bounds. Every section's
validation goes through these two, so the messages read the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, field, fields, is_dataclass
from typing import Any, Optional, Union, get_type_hints

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ablate.errors import ConfigError, ConfigErrors
from ablate.registry import suggest


def option(default: Any, help: str, *, choices: Union[Sequence[Any], Callable[[], Sequence[Any]], None] = None,
           minimum: Optional[float] = None, above: Optional[float] = None, below: Optional[float] = None) -> Any:
    """A dataclass field with its help text and the values it accepts (None is always accepted: 'auto').

    minimum: value >= minimum; above: value > above; below: value < below.
    """
    meta = {"help": help, "choices": choices, "minimum": minimum, "above": above, "below": below}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def help_of(cls: type, name: str) -> str:
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("help", "")
    return ""


def choices_of(cls: type, name: str) -> Optional[list[Any]]:
    for f in fields(cls):
        if f.name == name:
            c = f.metadata.get("choices")
            return list(c() if callable(c) else c) if c is not None else None
    return None


def default_of(cls: type, name: str) -> Any:
    for f in fields(cls):
        if f.name == name:
            return f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default
    raise KeyError(name)


def field_errors(obj: Any, section: str, where: Optional[str], only: Optional[set[str]] = None,
                 values: Optional[dict[str, Any]] = None) -> list[ConfigError]:
    """Every value of obj (or of `values`, checked against obj's class) outside its field's choices or bounds."""
    cls = obj if isinstance(obj, type) else type(obj)
    errors = []
    for f in fields(cls):
        if values is None and is_dataclass(getattr(obj, f.name, None)):  # a sub-section: its own fields
            if only is None or f.name in only:
                errors += field_errors(getattr(obj, f.name), f"{section}.{f.name}", where)
            continue
        if only is not None and f.name not in only:
            continue
        value = values[f.name] if values is not None else getattr(obj, f.name)
        if value is None:
            continue
        key, meta = f"{section}.{f.name}", f.metadata
        choices = choices_of(cls, f.name)
        if choices is not None and value not in choices:
            errors.append(ConfigError(key, value, f"must be one of {', '.join(map(str, choices))}"
                                      f"{suggest(value, [str(c) for c in choices])}", where))
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if meta.get("minimum") is not None and (not number or value < meta["minimum"]):
            whole = get_type_hints(cls).get(f.name) in (int, Optional[int])
            what = "a whole number" if whole else "a number"
            errors.append(ConfigError(key, value, f"must be {what} >= {meta['minimum']:g}"
                                      + (" (> 0)" if meta["minimum"] == 1 and whole else ""), where))
        elif meta.get("above") is not None and (not number or value <= meta["above"]):
            what = meta.get("help") or "number"  # e.g. "must be a learning rate > 0"
            errors.append(ConfigError(key, value, f"must be a {what} > {meta['above']:g}", where))
        elif meta.get("below") is not None and (not number or value >= meta["below"]):
            errors.append(ConfigError(key, value, f"must be a number in [{meta.get('minimum') or 0:g}, "
                                      f"{meta['below']:g})", where))
    return errors


def structured(section: str, cls: type, data: Any, where: Optional[str]) -> Any:
    """data merged onto cls's defaults, with unknown keys and wrong types reported by name."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigErrors([ConfigError(section, data, "must be a mapping of keys to values", where)])
    errors = []
    valid = [f.name for f in fields(cls)]
    for key, value in data.items():
        if key not in valid:
            errors.append(ConfigError(f"{section}.{key}", value,
                                      f"unknown key{suggest(key, valid)} (valid: {', '.join(valid)})", where))
        elif is_dataclass(_optional(field_type(cls, key))) and value is not None and not isinstance(value, dict):
            sub = [f.name for f in fields(_optional(field_type(cls, key)))]
            errors.append(ConfigError(f"{section}.{key}", value, f"must be a mapping with keys {', '.join(sub)}",
                                      where))
        elif is_dataclass(_optional(field_type(cls, key))) and isinstance(value, dict):
            try:
                structured(f"{section}.{key}", _optional(field_type(cls, key)), value, where)
            except ConfigErrors as e:
                errors += e.errors
    if errors:
        raise ConfigErrors(errors)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), data)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = f"{section}.{e.full_key}" if getattr(e, "full_key", None) else section
        value = lookup(data, str(getattr(e, "full_key", "") or ""))
        expected = f"wrong type: expected {_type_name(cls, str(e.full_key or ''))}" if e.full_key else str(e)
        raise ConfigErrors([ConfigError(key, value, expected, where)]) from None


def field_type(cls: type, key: str) -> Any:
    return get_type_hints(cls).get(key)


def _optional(t: Any) -> Any:
    """Optional[X] -> X (a section that may be left out, e.g. train.target), else t."""
    args = [a for a in getattr(t, "__args__", ()) if a is not type(None)]
    return args[0] if getattr(t, "__origin__", None) is Union and len(args) == 1 else t


def _type_name(cls: type, dotted: str) -> str:
    t: Any = cls
    for part in dotted.split("."):
        t = field_type(t, part) if is_dataclass(t) else None
    if t is None:
        return "another type"
    args = [a for a in getattr(t, "__args__", ()) if a is not type(None)]
    t = args[0] if getattr(t, "__origin__", None) is Union and len(args) == 1 else t
    return getattr(t, "__name__", str(t))


def lookup(data: dict, dotted: str) -> Any:
    """data['a']['b'] for 'a.b'; None where any part is missing."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
