"""Selection with DataComp's exact threshold semantics, and the paper's baselines' rules.

DataComp ``baselines/apply_filter.py::get_threshold``: ``n = int(len(scores) * fraction)``,
``threshold = -np.sort(-scores)[n]``, keep ``score >= threshold`` (ties at the threshold are all kept, so a
little more than ``fraction`` can survive; indexing at n, not n - 1, keeps n + 1 samples even without ties).
We reproduce this exactly, so uid lists match DataComp's own tooling.
"""
from __future__ import annotations

import re

import numpy as np


def datacomp_threshold(scores: np.ndarray, fraction: float) -> float:
    """The score threshold DataComp uses to keep the top ``fraction`` of ``scores``."""
    s = np.asarray(scores, dtype=np.float64)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    n = int(len(s) * fraction)
    if n >= len(s):
        return float(s.min())
    return float(-np.sort(-s)[n])


def select(scores: np.ndarray, fraction: float | None = None, threshold: float | None = None) -> np.ndarray:
    """Boolean keep-mask: ``score >= threshold`` (given, or DataComp's for ``fraction``). NaN scores (failed
    samples) are never kept."""
    s = np.asarray(scores, dtype=np.float64)
    if (fraction is None) == (threshold is None):
        raise ValueError("give exactly one of fraction (DataComp top fraction) or threshold")
    finite = np.isfinite(s)
    if threshold is None:
        threshold = datacomp_threshold(s[finite], fraction)
    return finite & (s >= threshold)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) >= 3}


def text_match(ocr_texts: list[list[str]], captions: list[str]) -> np.ndarray:
    """Text-Match baseline: True where a recognised word (>= 3 characters, case-folded) also occurs in the
    caption, i.e. the pairs the baseline drops. The paper's exact matching rule is not recorded here [R]."""
    return np.array([bool(_words(" ".join(t)) & _words(c)) for t, c in zip(ocr_texts, captions)])
