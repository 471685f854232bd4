"""`ablate attend RUN_DIR "TEXT"`: where a trained run looks when it reads one input.

The run's model is rebuilt from its config.yaml, its weights loaded from the
checkpoint (torch.load(weights_only=True)), and the input decoded free-running.
A teacher-forced forward on (input, produced output) with need_weights=True then
gives every attention map: one heatmap per layer and head is written, and the
tokens each position attends to most are printed.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TextIO

import numpy as np

from ablate.errors import ConfigErrors
from ablate.experiment.store import writable

SAMPLE_MAX_LEN = 12  # report heatmaps use the longest test input up to this many tokens


class AttendError(Exception):
    """A problem with the run or the input, worth a one-line message and exit code 2."""


@dataclass
class Attention:
    """Attention maps of one run on one input; maps[name] is (heads, queries, keys)."""

    run_dir: Path
    arch: str
    label: str
    src: list[str]  # input tokens
    out: list[str]  # produced tokens, up to and including <eos>
    dec_in: list[str]  # the decoder's input: <bos> + out[:-1]
    maps: dict[str, np.ndarray]

    def axes(self, name: str) -> tuple[list[str], list[str]]:
        """(query labels, key labels) of a map, by its name, else by its shape."""
        h, q, k = self.maps[name].shape
        rows = self.src if name.startswith("encoder") else self.out
        cols = self.src if name.startswith("encoder") or "cross" in name else self.dec_in
        if len(rows) != q:
            rows = next((t for t in (self.out, self.src, self.dec_in) if len(t) == q), [str(i) for i in range(q)])
        if len(cols) != k:
            cols = next((t for t in (self.src, self.dec_in, self.out) if len(t) == k), [str(i) for i in range(k)])
        return rows, cols


def has_attention(model_cfg: Any) -> bool:
    return getattr(model_cfg, "attention", None) not in (None, "none")


def attention_archs() -> list[str]:
    from ablate.models import ARCHS
    from ablate.structured import default_of

    out = []
    for a in ARCHS.names():
        cls = ARCHS.meta(a)["config"]
        if "attention" in cls.__dataclass_fields__ and default_of(cls, "attention") not in (None, "none"):
            out.append(a)
    return out


def load_config(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The run's RunConfig (rebuilt from config.yaml) and the raw tree."""
    import yaml

    from ablate.config import build_run

    path = run_dir / "config.yaml"
    if not run_dir.exists():
        raise AttendError(f"run {run_dir} does not exist: {run_first(run_dir)}")
    if not path.is_file():
        raise AttendError(f"{run_dir} is not a run directory (no config.yaml); expected runs/<name>/<run_id>")
    tree = yaml.safe_load(path.read_text()) or {}
    cfg, _ = build_run(tree, tree.get("seed", 0), str(path))
    return cfg, tree


def run_first(run_dir: Path) -> str:
    """Which experiment makes this run: 'train it first with `ablate run experiments/<name>.yaml`'."""
    name = run_dir.parent.name or "<name>"
    exp = Path("experiments") / f"{name}.yaml"
    return (f"train it first with `ablate run {exp}`" + ("" if exp.is_file() else " (the experiment that made it)")
            + f", then use runs/{name}/{run_dir.name}")


def checkpoint_path(run_dir: Path) -> Path:
    try:
        rel = json.loads((run_dir / "result.json").read_text()).get("checkpoint", {}).get("path")
    except (OSError, ValueError):
        rel = None
    for p in [run_dir / rel] if rel else []:
        if p.is_file():
            return p
    for name in ("best.ckpt", "last.ckpt"):
        if (run_dir / "checkpoints" / name).is_file():
            return run_dir / "checkpoints" / name
    found = sorted((run_dir / "checkpoints").glob("*.ckpt")) if (run_dir / "checkpoints").is_dir() else []
    if not found:
        raise AttendError(f"run {run_dir} has no checkpoint (checkpoints/best.ckpt): did it finish training? "
                          f"A report's copy of a run holds no weights; {run_first(run_dir)}")
    return found[0]


def load_model(run_dir: Path, cfg: Any, info: Any) -> Any:
    """The run's model with its trained weights, in eval mode on the CPU."""
    import torch

    from ablate.models import build_model

    model = build_model(cfg.model, info)
    ckpt = torch.load(checkpoint_path(run_dir), map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")} or state
    model.load_state_dict(state)
    return model.eval()


def sample_input(data: Any) -> list[str]:
    """A test input of a task: the longest one of at most SAMPLE_MAX_LEN tokens (else the shortest)."""
    lens = data.test.src_len.tolist()
    short = [i for i, n in enumerate(lens) if n <= SAMPLE_MAX_LEN]
    i = max(short, key=lambda j: (lens[j], -j)) if short else min(range(len(lens)), key=lambda j: (lens[j], j))
    return data.src_vocab.decode(data.test.src[i, : lens[i]].tolist(), strip=False)


def check_tokens(tokens: list[str], vocab: Any, run: str) -> None:
    valid = vocab.itos[5:]  # after the specials
    example = " ".join(valid[:12]) + (" ..." if len(valid) > 12 else "")
    if not tokens:
        raise AttendError(f"the input is empty: give space-separated tokens, e.g. {' '.join(valid[:4])}")
    bad = [t for t in tokens if t not in vocab]
    if bad:
        raise AttendError(f"token {bad[0]!r} is not in the vocabulary of run {run} "
                          f"({len(valid)} tokens, e.g. {example})")


def compute(run_dir: str | Path, tokens: Optional[list[str]] = None) -> Attention:
    """Free-running output and every attention map of a run on tokens (default: a test input)."""
    import torch

    from ablate.tasks import Vocab, build_task
    from ablate.train.sizing import info_of

    run_dir = Path(run_dir)
    cfg, tree = load_config(run_dir)
    arch, label = cfg.model.arch, (tree.get("run") or {}).get("label", run_dir.name)
    if not has_attention(cfg.model):
        raise AttendError(f"run {run_dir.name} has arch {arch!r}, which has no attention to show "
                          f"(archs with attention: {', '.join(attention_archs())})")
    data = build_task(cfg.task)
    vocab = Vocab.load(run_dir / "vocab.json") if (run_dir / "vocab.json").is_file() else data.vocab
    # the source side has its own table when the run's vocabularies are separate (src_vocab.json)
    src_vocab = Vocab.load(run_dir / "src_vocab.json") if (run_dir / "src_vocab.json").is_file() else (
        vocab if (run_dir / "vocab.json").is_file() else data.src_vocab)
    tokens = sample_input(data) if tokens is None else tokens
    check_tokens(tokens, src_vocab, run_dir.name)
    info = info_of(data)
    model = load_model(run_dir, cfg, info)
    src, src_len = torch.tensor([src_vocab.encode(tokens)]), torch.tensor([len(tokens)])
    with torch.no_grad():
        try:
            ids = model.generate(src, src_len, info.max_tgt_len)[0].tolist()
        except (ValueError, IndexError, RuntimeError) as e:  # e.g. a learned positional encoding too short
            raise AttendError(f"run {run_dir.name} cannot read this input ({len(tokens)} tokens): {e}") from None
        out_ids = ids[: ids.index(Vocab.eos) + 1] if Vocab.eos in ids else ids
        out_ids = [i for i in out_ids if i != Vocab.pad] or [Vocab.eos]
        dec_in = [Vocab.bos, *out_ids[:-1]]
        model(src, src_len, torch.tensor([dec_in]), need_weights=True)
    maps = {k: v[0].float().cpu().numpy() for k, v in getattr(model, "last_attn", {}).items()}
    if not maps:
        raise AttendError(f"run {run_dir.name} (arch {arch!r}) produced no attention weights")
    decode = lambda ids: vocab.decode(ids, strip=False)  # noqa: E731
    return Attention(run_dir, arch, label, list(tokens), decode(out_ids), decode(dec_in), maps)


# ------------------------------------------------------------------ drawing
def module_title(name: str) -> str:
    """'decoder.layer1.cross' -> 'decoder layer 2 cross-attention' (layers counted from 1)."""
    parts = name.split(".")
    words = []
    for p in parts:
        if p.startswith("layer") and p[5:].isdigit():
            words.append(f"layer {int(p[5:]) + 1}")
        elif p in ("self", "cross"):
            words.append(f"{p}-attention")
        else:
            words.append(p)
    return " ".join(words)


def draw(ax: Any, w: np.ndarray, rows: list[str], cols: list[str], title: str, colorbar: bool = True,
         small: Optional[bool] = None, annotate: Optional[bool] = None) -> None:
    """One attention map as a heatmap: queries down, keys across, weights in [0, 1]. small: one label per
    token; annotate: each cell's weight written in it (by default from the token counts; a caller that knows
    the cell's printed size decides, since tiny cells make both unreadable)."""
    import seaborn as sns

    small = max(len(rows), len(cols)) <= 24 if small is None else small
    annotate = max(len(rows), len(cols)) <= 10 if annotate is None else annotate
    # Long inputs (e.g. 256 tokens: 65k cells a map) are drawn as one raster without cell borders: drawn cell
    # by cell they took minutes a figure and made multi-megabyte PDFs.
    sns.heatmap(w, ax=ax, vmin=0, vmax=1, cmap="viridis", square=True, cbar=colorbar,
                linewidths=0.5 if small else 0, rasterized=not small,
                xticklabels=cols if small else False, yticklabels=rows if small else False,
                annot=annotate, fmt=".2f", annot_kws={"fontsize": 7},
                cbar_kws={"shrink": 0.8} if colorbar else None)
    if not small:  # too many tokens to name: mark positions instead (seaborn's "auto" redraws the figure)
        for n, set_ticks in ((len(cols), ax.set_xticks), (len(rows), ax.set_yticks)):
            step = max(1, 10 ** math.floor(math.log10(max(n, 1) / 4)))
            step *= 5 if n / step > 20 else 2 if n / step > 8 else 1
            set_ticks(np.arange(0, n, step) + 0.5, labels=[str(i) for i in range(0, n, step)])
    if colorbar:
        ax.collections[0].colorbar.set_label("attention weight", fontsize=8)
        ax.collections[0].colorbar.ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=10)
    long_labels = max((len(c) for c in cols), default=0) > 3
    ax.tick_params(axis="x", labelrotation=90 if long_labels else 0, labelsize=8)
    ax.tick_params(axis="y", labelrotation=0, labelsize=8)


def axis_names(name: str) -> tuple[str, str]:
    """(y label, x label) of a map."""
    if name.startswith("encoder"):
        return "input token (query)", "input token (key)"
    if "cross" in name:
        return "output token (query)", "input token (key)"
    return "output token (query)", "decoder input (key)"


def write_heatmaps(att: Attention, out: Path) -> list[Path]:
    """One PNG per attention module and head: <module>.head<h>.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, w in att.maps.items():
        rows, cols = att.axes(name)
        ylab, xlab = axis_names(name)
        for h in range(w.shape[0]):
            fig, ax = plt.subplots(figsize=(min(3.2 + 0.45 * len(cols), 18), min(1.8 + 0.45 * len(rows), 16)))
            draw(ax, w[h], rows, cols, f"{module_title(name)}, head {h + 1} of {w.shape[0]} ({att.arch})")
            ax.set_xlabel(xlab)
            ax.set_ylabel(ylab)
            fig.tight_layout()
            path = out / f"{name}.head{h}.png"
            fig.savefig(path, dpi=120, bbox_inches="tight")
            plt.close(fig)
            paths.append(path)
    return paths


def describe(att: Attention, top: int = 3) -> str:
    """For each map and query position, the keys it attends to most (mean over heads)."""
    lines = [f"run {att.run_dir.name} ({att.label}, arch {att.arch})", f"input : {' '.join(att.src)}",
             f"output: {' '.join(att.out)}"]
    for name, w in att.maps.items():
        rows, cols = att.axes(name)
        mean = w.mean(0)
        lines.append(f"{name} ({w.shape[0]} head{'s' * (w.shape[0] != 1)}; mean over heads, top {top}):")
        width = max(len(f"{r} [{i}]") for i, r in enumerate(rows))
        for i, r in enumerate(rows):
            best = np.argsort(-mean[i], kind="stable")[:top]
            keys = "   ".join(f"{cols[j]} [{j}] {mean[i, j]:.2f}" for j in best if j == best[0] or mean[i, j] >= 0.01)
            lines.append(f"  {f'{r} [{i}]'.ljust(width)} -> {keys}")
    return "\n".join(lines)


def attend(run_dir: str | Path, text: str, out: Optional[str | Path] = None, stdout: Optional[TextIO] = None) -> int:
    """Heatmaps into out (default RUN_DIR/attend/) and the top attended tokens on stdout; the exit code."""
    run_dir = Path(run_dir)
    try:
        att = compute(run_dir, text.split())
    except AttendError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dest = Path(out) if out else run_dir / "attend"
    try:
        writable(dest, "--out")
    except ConfigErrors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = write_heatmaps(att, dest)
    stdout = stdout or sys.stdout
    print(describe(att), file=stdout)
    print(f"{len(paths)} heatmap{'s' * (len(paths) != 1)} -> {dest}", file=stdout)
    return 0
