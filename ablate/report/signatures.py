"""Footnotes that say how corpus metrics were computed: the sacreBLEU signatures the runs recorded."""

from __future__ import annotations

import pandas as pd

SIGNED = {"bleu_signature": "BLEU", "chrf_signature": "chrF"}


def signature_notes(df: pd.DataFrame) -> list[str]:
    """One note per signed metric the runs recorded, e.g. 'BLEU: sacreBLEU corpus BLEU ..., signature nrefs:1|...'."""
    notes = []
    for col, name in SIGNED.items():
        if col not in df:
            continue
        sigs = list(dict.fromkeys(str(s) for s in df[col].dropna() if str(s)))
        if sigs:
            notes.append(f"{name}: sacreBLEU corpus {name} of the detokenized test outputs, "
                         f"signature {'; '.join(sigs)}.")
    return notes
