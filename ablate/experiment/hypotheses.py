"""An experiment's `hypotheses:`: what it tests, declared before it runs, checked like every other key.

    hypotheses:
      - name: no_pe_hurts                      # unique plain name
        claim: Without positional encoding the encoder is a bag of tokens
        rows: [no_pe, base]                    # the row tested, the row it is compared with: a variant name, a
                                               # row label, or {model.arch: lstm, task.name: reverse}
        metric: test/seq_acc                   # default report.metric; also steps_to_target, reached
        expect: lower                          # higher | lower: the first row against the second
        alpha: 0.05                            # family-wise level (Holm over the experiment's hypotheses)
        published: {figure: "25.8 BLEU", source: "Vaswani et al. 2017 §3.5"}   # shown beside ours, never tested
        note: why the verdict reads as it does # prose: explains a verdict, never decides it

The report (ablate.report.verdicts) computes each verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ablate.errors import ConfigError
from ablate.registry import suggest

KEYS = ["name", "claim", "rows", "metric", "expect", "alpha", "published", "note"]
EXPECT = ["higher", "lower"]
RECORDED = ["tokens_per_s", "decode_tokens_per_s", "train_time_s", "eval_time_s", "params"]  # result.json fields
SECTIONS = ("task.", "model.", "train.", "eval.")
COUNTS = {"steps_to_target": "steps to target (log-rank, unreached seeds censored)",
          "reached": "fraction of seeds that reached the target (Fisher's exact test)"}


@dataclass
class Hypothesis:
    name: str
    claim: str
    rows: tuple[Any, Any]  # each a variant name, a row label, or {dotted config key: value}
    metric: str
    expect: str
    alpha: float = 0.05
    published: dict[str, str] = field(default_factory=dict)  # figure, source
    note: str = ""


def _row_errors(row: Any, names: Optional[list[str]], key: str, where: Optional[str]) -> list[ConfigError]:
    if isinstance(row, str):
        if names is None or row in names:
            return []
        return [ConfigError(key, row, f"names no row of this experiment{suggest(row, names)} (rows: "
                            f"{', '.join(names)}; or a mapping of config keys to values)", where)]
    bad = [k for k in row if not isinstance(k, str) or not (k == "variant" or k.startswith(SECTIONS))]
    if not row or bad:
        return [ConfigError(key, row, "a row given as a mapping names it by dotted config keys and values, e.g. "
                            "{model.arch: lstm, task.name: reverse} (and 'variant')", where)]
    nested = [k for k, v in row.items() if isinstance(v, (dict, list))]
    if nested:
        return [ConfigError(f"{key}.{nested[0]}", row[nested[0]], "must be one value (a number, text or true/false)",
                            where)]
    return []


def _has_target(raw: dict[str, Any]) -> bool:
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    if train.get("target"):
        return True
    overrides = [*(raw.get("grid") or {}), *(k for v in (raw.get("variants") or {}).values() if isinstance(v, dict)
                                            for k in v)]
    return any(str(k).startswith("train.target") for k in overrides)


def check_hypotheses(value: Any, raw: dict[str, Any], where: Optional[str],
                     names: Optional[list[str]] = None) -> list[ConfigError]:
    """Every problem of a `hypotheses:` value, each naming the key, the value and what would be valid.

    names: what `rows` may name (the planner's `row_names`). None: the rows may differ from the file's (a
    command-line sweep replaced a grid axis, or a report reads a stored experiment), so a row name is not checked
    against them; the report then calls a hypothesis whose rows are not there inconclusive.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        return [ConfigError("hypotheses", value, "must be a list of mappings (name, claim, rows, metric, expect)",
                            where)]
    errors: list[ConfigError] = []
    seen: set[str] = set()
    for i, h in enumerate(value):
        at = f"hypotheses[{i}]"
        if not isinstance(h, dict):
            errors.append(ConfigError(at, h, f"must be a mapping with keys {', '.join(KEYS)}", where))
            continue
        at = f"hypotheses[{i}]" if not isinstance(h.get("name"), str) else f"hypotheses.{h['name']}"
        for k in h:
            if k not in KEYS:
                errors.append(ConfigError(f"{at}.{k}", h[k], f"unknown key{suggest(str(k), KEYS)} (valid: "
                                          f"{', '.join(KEYS)})", where))
        name = h.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name):
            errors.append(ConfigError(f"{at}.name", name, "must be a plain name (letters, digits, _ . -)", where))
        elif name in seen:
            errors.append(ConfigError(f"{at}.name", name, "must not repeat another hypothesis's name", where))
        else:
            seen.add(name)
        if not isinstance(h.get("claim"), str) or not h["claim"].strip():
            errors.append(ConfigError(f"{at}.claim", h.get("claim"), "must be the claim, as text", where))
        rows = h.get("rows")
        if not isinstance(rows, list) or len(rows) != 2 or not all(isinstance(r, (str, dict)) for r in rows):
            errors.append(ConfigError(f"{at}.rows", rows, "must be two rows: [the row tested, the row it is compared "
                                      "with], each a row name or a mapping of config keys to values (rows: "
                                      f"{', '.join(names)})", where))
        else:
            for r in rows:
                errors += _row_errors(r, names, f"{at}.rows", where)
            if rows[0] == rows[1]:
                errors.append(ConfigError(f"{at}.rows", rows, "must name two different rows", where))
        metric = h.get("metric")
        if metric is not None and (not isinstance(metric, str) or not (
                metric in COUNTS or metric in RECORDED or re.fullmatch(r"(test|val)/\w+", metric))):
            errors.append(ConfigError(f"{at}.metric", metric, "must be a recorded metric (test/<name>, val/<name>, "
                                      f"{', '.join(RECORDED)}), or {' or '.join(COUNTS)}", where))
        elif metric in COUNTS and not _has_target(raw):
            errors.append(ConfigError(f"{at}.metric", metric, "needs train.target (the runs record steps to a "
                                      "target only when they have one)", where))
        if h.get("expect") not in EXPECT:
            errors.append(ConfigError(f"{at}.expect", h.get("expect"), f"must be one of {', '.join(EXPECT)} (the "
                                      "first row against the second; 'lower' steps_to_target = reaches sooner)",
                                      where))
        alpha = h.get("alpha", 0.05)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            errors.append(ConfigError(f"{at}.alpha", alpha, "must be a number in (0, 1), e.g. 0.05", where))
        pub = h.get("published")
        if pub is not None and (not isinstance(pub, dict) or set(pub) - {"figure", "source"}
                                or not all(isinstance(v, str) for v in pub.values())):
            errors.append(ConfigError(f"{at}.published", pub, "must be a mapping {figure: text, source: text}",
                                      where))
        if h.get("note") is not None and not isinstance(h.get("note"), str):
            errors.append(ConfigError(f"{at}.note", h.get("note"), "must be text", where))
    return errors


def parse_hypotheses(raw: dict[str, Any], default_metric: str) -> list[Hypothesis]:
    """The declared hypotheses of a checked experiment (raw as stored with its runs)."""
    out = []
    for h in raw.get("hypotheses") or []:
        out.append(Hypothesis(name=h["name"], claim=h["claim"].strip(), rows=(h["rows"][0], h["rows"][1]),
                              metric=h.get("metric") or default_metric, expect=h["expect"],
                              alpha=float(h.get("alpha", 0.05)), published=dict(h.get("published") or {}),
                              note=str(h.get("note") or "").strip()))
    return out
