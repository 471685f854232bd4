"""Writes train.tsv / val.tsv / test.tsv here: a small parallel corpus made with the `translate` task.

Run from the repository root: python examples/my_corpus/make.py
(`ablate data experiments/....yaml --out DIR` writes any task's splits the same way.)
"""

from pathlib import Path

from ablate.tasks import build_task
from ablate.tasks.translate import TranslateConfig

here = Path(__file__).parent
data = build_task(TranslateConfig(n_train=3000, n_val=300, n_test=300, min_len=5, max_len=16, seed=7))
for name, split in data.splits.items():
    lines = []
    for i in range(len(split)):
        src = data.src_vocab.decode(split.src[i, : split.src_len[i]].tolist())
        tgt = data.vocab.decode(split.tgt[i].tolist())
        lines.append(" ".join(src) + "\t" + " ".join(tgt) + "\n")
    (here / f"{name}.tsv").write_text("".join(lines))
