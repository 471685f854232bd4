"""Command-line overrides: KEY=VALUE, KEY=a,b,c grid axes (as Hydra's multirun), and no silent shadowing.

A value given on the command line must change something: when the experiment's grid or a variant sets the
same key, the command-line value would never reach those runs, so that is an error naming both (exit 2)
rather than a run that silently ignores what was asked. A command-line grid axis (`model.n_heads=1,2,4`)
replaces a file axis of the same key; that is printed as a note before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ablate.errors import ConfigError, ConfigErrors

WHERE = "command line"
KEY_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
SWEEP_SECTIONS = ("task", "model", "train", "logger")  # the keys a run's config is made of


@dataclass
class Overrides:
    values: dict[str, Any] = field(default_factory=dict)  # dotted key -> one value
    sweeps: dict[str, list[Any]] = field(default_factory=dict)  # dotted key -> grid axis values

    def keys(self) -> list[str]:
        return [*self.values, *self.sweeps]


def split_top(text: str) -> list[str]:
    """'1,2,[3,4],"a,b"' -> ['1', '2', '[3,4]', '"a,b"']: commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _yaml(value: str) -> Any:
    if value == "":
        return None
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def parse(items: list[str], where: str = WHERE) -> Overrides:
    """KEY=VALUE strings -> Overrides; KEY=a,b (a run-config key) is a grid axis, seeds=0,1,2 a seed list."""
    out = Overrides()
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not KEY_RE.fullmatch(key):
            hint = ""
            if item.startswith("-"):
                hint = f"; overrides are KEY=VALUE without dashes, e.g. {item.lstrip('-')}=..."
            raise ConfigErrors([ConfigError("override", item, "must look like KEY=VALUE, e.g. model.d_model=128"
                                            + hint, where)])
        parts = split_top(value)
        if len(parts) > 1 and not all(p.strip() for p in parts):
            raise ConfigErrors([ConfigError(key, value, "empty value in the comma list (two commas in a row, or one "
                                            "at an end): give KEY=a,b,c, a value between every two commas",
                                            where)])
        if len(parts) > 1:
            values = [_yaml(p.strip()) for p in parts]
            repeated = [p.strip() for i, p in enumerate(parts) if repr(values[i]) in map(repr, values[:i])]
            if repeated:
                raise ConfigErrors([ConfigError(key, value, f"repeats the value {repeated[0]}: give each grid value "
                                                "once", where)])
            if key == "seeds":
                out.values[key] = values
                continue
            if key.split(".")[0] in SWEEP_SECTIONS:
                out.sweeps[key] = values
                continue
        out.values[key] = _yaml(value)
    return out


def flat_keys(tree: Any, prefix: str = "") -> list[str]:
    """Dotted keys of a (possibly dotted-key) mapping, leaves only."""
    if not isinstance(tree, dict) or not tree:
        return [prefix] if prefix else []
    keys = []
    for k, v in tree.items():
        keys += flat_keys(v, f"{prefix}.{k}" if prefix else str(k))
    return keys


def _overlap(a: str, b: str) -> bool:
    """Whether setting key a and key b touch the same config value (one is the other or contains it)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _axis_sets(axis: str, values: list[Any], key: str) -> bool:
    """Whether a grid axis sets key in some run (an axis of mappings sets only the keys its values hold)."""
    if not _overlap(axis, key):
        return False
    if key.startswith(axis + "."):
        return any(any(_overlap(f"{axis}.{k}", key) for k in flat_keys(v)) for v in values if isinstance(v, dict))
    return True


def check_shadowing(raw: dict[str, Any], over: Overrides) -> tuple[list[ConfigError], list[str]]:
    """(errors, notes): command-line values the file's grid or variants would overwrite, and replaced axes."""
    errors, notes = [], []
    grid = raw.get("grid") if isinstance(raw.get("grid"), dict) else {}
    variants = raw.get("variants") if isinstance(raw.get("variants"), dict) else {}
    var_keys = {name: flat_keys(v) for name, v in variants.items() if isinstance(v, dict)}
    for key, value in [*over.values.items(), *over.sweeps.items()]:
        if key.split(".")[0] not in SWEEP_SECTIONS:
            continue
        sweep = key in over.sweeps
        axes = [a for a, vals in grid.items() if isinstance(vals, list) and _axis_sets(a, vals, key)
                and not (sweep and a == key)]
        if axes:
            a = axes[0]
            errors.append(ConfigError(key, value, f"the experiment's grid axis {a} ({grid[a]}) sets this in every "
                                      f"run, so the command-line value would never be used; to run a subset of the "
                                      f"axis give {a}=v1,v2 (a command-line axis replaces the file's), or "
                                      f"grid.{a}=[v]", WHERE))
            continue
        tune = raw.get("tune") if isinstance(raw.get("tune"), dict) else {}
        tuned = [k for k, v in tune.items() if isinstance(v, list) and _overlap(k, key)]
        if tuned:
            errors.append(ConfigError(key, value, f"the experiment's tune: section picks {tuned[0]} per row from "
                                      f"{tune[tuned[0]]}, so the command-line value would never be used; give "
                                      f"tune.{tuned[0]}=[...] to change the candidates", WHERE))
            continue
        setters = [name for name, ks in var_keys.items() if any(_overlap(k, key) for k in ks)]
        if setters:
            errors.append(ConfigError(key, value, f"variant{'s' * (len(setters) > 1)} {', '.join(setters)} set"
                                      f"{'s' * (len(setters) == 1)} this too, so the command-line value would "
                                      "not reach their rows; change it in the experiment file (base config and "
                                      "variants) instead", WHERE))
            continue
        if sweep and key in grid:
            notes.append(f"the command-line grid axis {key}={','.join(map(str, value))} replaces the file's "
                         f"{key}: {grid[key]}")
    return errors, notes


def blame(errors: list[ConfigError], keys: list[str]) -> list[ConfigError]:
    """Errors about a key the command line set are the command line's, not the file's."""
    out = []
    for e in errors:
        key = str(e.key)
        hit = any(_overlap(key, k) or key == f"grid.{k}" for k in keys)
        ctx = e.where[e.where.find(" ("):] if e.where and " (" in e.where else ""
        out.append(ConfigError(e.key, e.value, e.expected, WHERE + ctx) if hit and e.where != WHERE else e)
    return out
