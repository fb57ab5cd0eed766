"""The filters of the paper's tables as one rule over a table of per-sample scores (a DataFrame with one row per
sample: ``uid``, ``status``, ``clip_score``, ``tmars_score``, ``text_match``, DataComp's sidecar scores).

- ``no_filter``: every sample that could be read;
- ``laion``: DataComp's LAION-2B rule, OpenAI B/32 CLIP score >= 0.28 (DataComp adds an English-only filter with
  gcld3, which needs a language column: ``language_column``);
- ``clip_score``: DataComp's ``clip_score --arch l14 --fraction 0.3``: top 30% by L/14 score;
- ``tmars``: top fraction by the L/14 score of the text-masked image (the paper's method);
- ``text_match``: drop pairs whose OCR text overlaps the caption;
- intersections: any rule ``&`` others (``intersect``), or ``&`` an external uid list (``uids_file``: e.g. the
  C-SSFT / C-RHO subsets of the paper's T-MARS ∩ C-SSFT rows, which we do not compute ourselves).
Failed samples are never kept. Fractions are of the samples that have a score (DataComp's metadata gives every
sample one; ours has none for a failed sample), with DataComp's threshold semantics (``select.select``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tmars.select import select

SCORE_COLUMNS = {"clip": "clip_score", "tmars": "tmars_score", "clip_b32": "clip_b32_similarity_score",
                 "clip_l14": "clip_l14_similarity_score"}


@dataclass
class Rule:
    """One filter: ``kind`` in all | top_fraction | threshold | text_match; ``score`` a key of SCORE_COLUMNS."""

    name: str
    kind: str = "top_fraction"
    score: str = "tmars"
    fraction: float | None = 0.3
    threshold: float | None = None
    language_column: str | None = None
    intersect: list[Rule] = field(default_factory=list)
    uids_file: str | None = None


def apply_rule(df, rule: Rule) -> np.ndarray:
    """Boolean keep-mask over the rows of ``df``."""
    ok = (df["status"] == "ok").to_numpy()
    if rule.kind == "all":
        keep = ok.copy()
    elif rule.kind in ("top_fraction", "threshold"):
        col = SCORE_COLUMNS.get(rule.score, rule.score)
        if col not in df.columns:
            raise KeyError(f"filter {rule.name!r} needs score column {col!r}, which the score table lacks "
                           f"(columns: {sorted(df.columns)}); DataComp's precomputed scores come from the shard's "
                           "metadata parquet beside each .tar")
        s = np.where(ok, df[col].to_numpy(dtype=np.float64), np.nan)
        if rule.kind == "top_fraction":
            keep = select(s, fraction=rule.fraction)
        else:
            keep = select(s, threshold=rule.threshold)
    elif rule.kind == "text_match":
        if "text_match" not in df.columns or df.loc[ok, "text_match"].isna().any():
            raise ValueError("text_match needs OCR text: score the shards with detector.recognize=true")
        keep = ok & ~df["text_match"].fillna(False).to_numpy(bool)
    else:
        raise ValueError(f"unknown filter kind {rule.kind!r}: use all, top_fraction, threshold or text_match")
    if rule.language_column:
        keep &= (df[rule.language_column] == "en").to_numpy()
    for other in rule.intersect:
        keep &= apply_rule(df, other)
    if rule.uids_file:
        from tmars.shards import npy_to_uids

        keep &= df["uid"].isin(set(npy_to_uids(rule.uids_file))).to_numpy()
    return keep
