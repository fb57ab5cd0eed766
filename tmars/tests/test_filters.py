"""The filter rules over a score table: DataComp semantics, thresholds, Text-Match, intersections, uid files."""
import numpy as np
import pandas as pd
import pytest

from tmars.filters import Rule, apply_rule
from tmars.shards import npy_to_uids, uids_to_npy


def _table():
    uids = [f"{i:032x}" for i in range(8)]
    return pd.DataFrame({
        "uid": uids, "status": ["ok"] * 7 + ["failed"],
        "clip_score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, np.nan],
        "tmars_score": [0.1, 0.8, 0.7, 0.6, 0.5, 0.4, 0.35, np.nan],
        "clip_b32_similarity_score": [0.30, 0.29, 0.28, 0.27, 0.1, 0.5, 0.2, 0.9],
        "text_match": [True, False, False, False, True, False, False, None]})


def test_rules():
    df = _table()
    assert apply_rule(df, Rule("no", kind="all")).tolist() == [True] * 7 + [False]
    # DataComp: n = int(7 * 0.3) = 2 -> threshold = 3rd best; failed rows never kept
    assert apply_rule(df, Rule("c", score="clip", fraction=0.3)).tolist() == [True, True, True] + [False] * 5
    assert apply_rule(df, Rule("t", score="tmars", fraction=0.3)).tolist() == [False, True, True, True] + [False] * 4
    laion = apply_rule(df, Rule("l", kind="threshold", score="clip_b32", fraction=None, threshold=0.28))
    assert laion.tolist() == [True, True, True, False, False, True, False, False]  # failed row 7 dropped
    assert apply_rule(df, Rule("tm", kind="text_match")).tolist() == [False, True, True, True, False, True, True, False]
    both = Rule("tc", score="tmars", fraction=0.3, intersect=[Rule("c", score="clip", fraction=0.3)])
    assert apply_rule(df, both).tolist() == [False, True, True] + [False] * 5


def test_uid_files_round_trip_and_intersect(tmp_path):
    df = _table()
    arr = uids_to_npy(reversed(df.uid[:4].tolist() + [df.uid[0]]), tmp_path / "u.npy")
    assert arr.dtype == np.dtype("u8,u8") and len(arr) == 4 and (np.sort(arr) == arr).all()
    assert npy_to_uids(tmp_path / "u.npy") == df.uid[:4].tolist()
    big = "f" * 16 + "0" * 15 + "1"
    uids_to_npy([big], tmp_path / "b.npy")
    assert np.load(tmp_path / "b.npy")[0].tolist() == (2**64 - 1, 1) and npy_to_uids(tmp_path / "b.npy") == [big]
    r = Rule("x", kind="all", uids_file=str(tmp_path / "u.npy"))
    assert apply_rule(df, r).tolist() == [True] * 4 + [False] * 4


def test_errors_name_the_fix():
    df = _table().drop(columns=["clip_b32_similarity_score"])
    with pytest.raises(KeyError, match="clip_b32_similarity_score"):
        apply_rule(df, Rule("l", kind="threshold", score="clip_b32", threshold=0.28))
    df["text_match"] = None
    with pytest.raises(ValueError, match="recognize=true"):
        apply_rule(df, Rule("tm", kind="text_match"))
    with pytest.raises(ValueError, match="unknown filter kind"):
        apply_rule(_table(), Rule("z", kind="topk"))
