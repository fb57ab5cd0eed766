"""Results tables: our runs' metrics beside the paper's numbers, and the paper's claims checked.

``results/paper.yaml`` (CONVENTIONS section 8) holds the paper's numbers as data::

    project:                      # one README row (make readme)
      title: "Sinkhorn-Flow"      # paper title (short)
      arxiv: "2303.07675"
      table: "Rada faction flows (Table ?)"   # what the paper-scale experiment reproduces
      mini_claim: "Sinkhorn-Flow < softmax on test KL"
    source: {arxiv: "2303.07675", version: "v1", where: "Table 1"}
    metric: test/kl               # the headline metric (a key of metrics.json "metrics")
    metrics: [test/kl, test/tv]   # optional: every metric the tables show (default [metric])
    higher_is_better: false
    tolerance: 0.01               # absolute: |ours - paper| <= tolerance counts as a match
    keys: [method.name]           # dotted config fields that identify a row
    rows:                         # the paper's numbers; verified: false rows are shown, never judged
      - {keys: {method.name: sinkhorn}, scale: paper, values: {test/kl: 0.12}, verified: false}
    claims:                       # scale-free relations the runs must meet
      - {name: "...", scale: mini, metric: test/kl, lhs: {method.name: sinkhorn}, op: "<",
         rhs: {method.name: softmax}}          # rhs may also be a number
      - {name: "... in every seed", lhs: {...}, op: ">", rhs: {...}, paired: seed}
         # paired: a config field; the relation must hold for EVERY pair of runs sharing its value (same seed),
         # and every run must have a partner; lhs/rhs shown as the paired means; min_pairs (default 1): fewer
         # pairs than this leave the claim "missing" (one lucky seed is not "every seed")
      - {name: "... at least 10x lower", lhs: {...}, op: ">", rhs: {...}, factor: 10}
         # factor: the rhs is multiplied by it before comparing (shown multiplied)

Our runs are the ``metrics.json`` files under a run root (one per seed); runs sharing the row keys are
aggregated as mean ± std (n). ``python -m shared.results <project_dir> --scale mini --check`` renders
``results/mini.md`` and exits 1 when a claim is broken or cannot be evaluated.
"""
from __future__ import annotations

import argparse
import json
import operator
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
SCALES = ("mini", "paper", "any")
_TOP_KEYS = {"project", "source", "metric", "metrics", "higher_is_better", "tolerance", "keys", "rows",
             "claims", "notes"}
_ROW_KEYS = {"keys", "scale", "values", "verified", "note"}
_CLAIM_KEYS = {"name", "scale", "metric", "lhs", "op", "rhs", "note", "paired", "min_pairs", "factor"}


class PaperYamlError(ValueError):
    """A results/paper.yaml that does not follow the schema; the message names the bad key."""


def _fail(path, where: str, msg: str):
    raise PaperYamlError(f"{path}: {where}: {msg} (schema: see shared/shared/results.py docstring)")


def load_paper_yaml(path: str | Path) -> dict:
    """Read and validate a project's ``results/paper.yaml``; errors name the file and the bad key."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: every project keeps the paper's numbers in results/paper.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        _fail(path, "top level", "must be a mapping")
    unknown = set(spec) - _TOP_KEYS
    if unknown:
        _fail(path, "top level", f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    for req in ("source", "metric", "higher_is_better", "keys", "rows"):
        if req not in spec:
            _fail(path, req, "missing required key")
    if not isinstance(spec["metric"], str):
        _fail(path, "metric", "must be a metric name such as 'test/kl'")
    if not isinstance(spec["higher_is_better"], bool):
        _fail(path, "higher_is_better", "must be true or false")
    if not (isinstance(spec["keys"], list) and all(isinstance(k, str) for k in spec["keys"])):
        _fail(path, "keys", "must be a list of dotted config fields, e.g. [method.name, data.sparsity]")
    tol = spec.setdefault("tolerance", None)
    if tol is not None and not (isinstance(tol, (int, float)) and tol >= 0):
        _fail(path, "tolerance", f"must be a non-negative number, got {tol!r}")
    spec.setdefault("metrics", [spec["metric"]])
    if not isinstance(spec["metrics"], list):
        _fail(path, "metrics", "must be a list of metric names")
    keys = set(spec["keys"])
    for i, row in enumerate(spec["rows"] or []):
        where = f"rows[{i}]"
        if not isinstance(row, dict):
            _fail(path, where, "must be a mapping")
        if set(row) - _ROW_KEYS:
            _fail(path, where, f"unknown key(s) {sorted(set(row) - _ROW_KEYS)}; allowed: {sorted(_ROW_KEYS)}")
        if not isinstance(row.get("keys"), dict) or set(row["keys"]) != keys:
            _fail(path, f"{where}.keys", f"must map every field of `keys` {sorted(keys)} to a value")
        if row.setdefault("scale", "paper") not in SCALES:
            _fail(path, f"{where}.scale", f"must be one of {SCALES}")
        vals = row.setdefault("values", {})
        if not isinstance(vals, dict) or not all(v is None or isinstance(v, (int, float)) for v in vals.values()):
            _fail(path, f"{where}.values", "must map metric names to numbers (or null when not retrieved)")
        if not isinstance(row.setdefault("verified", False), bool):
            _fail(path, f"{where}.verified", "must be true or false")
    spec["rows"] = spec["rows"] or []
    for i, claim in enumerate(spec.setdefault("claims", []) or []):
        where = f"claims[{i}]"
        if not isinstance(claim, dict):
            _fail(path, where, "must be a mapping")
        if set(claim) - _CLAIM_KEYS:
            _fail(path, where, f"unknown key(s) {sorted(set(claim) - _CLAIM_KEYS)}; allowed: {sorted(_CLAIM_KEYS)}")
        for req in ("name", "lhs", "op", "rhs"):
            if req not in claim:
                _fail(path, f"{where}.{req}", "missing required key")
        if claim["op"] not in OPS:
            _fail(path, f"{where}.op", f"must be one of {sorted(OPS)}, got {claim['op']!r}")
        if claim.setdefault("scale", "any") not in SCALES:
            _fail(path, f"{where}.scale", f"must be one of {SCALES}")
        claim.setdefault("metric", spec["metric"])
        if claim.get("paired") is not None and not (isinstance(claim["paired"], str) and isinstance(claim["lhs"], dict)
                                                     and isinstance(claim["rhs"], dict)):
            _fail(path, f"{where}.paired", "must be a config field (e.g. seed) and both sides must be rows")
        if not isinstance(claim.setdefault("factor", 1.0), (int, float)) or not claim["factor"] > 0:
            _fail(path, f"{where}.factor", "must be a positive number")
        for side in ("lhs", "rhs"):
            v = claim[side]
            if not (isinstance(v, (int, float)) or (isinstance(v, dict) and v and set(v) <= keys)):
                _fail(path, f"{where}.{side}", f"must be a number or a mapping of `keys` fields {sorted(keys)}")
    spec["claims"] = spec["claims"] or []
    return spec


def get_dotted(d: Any, dotted: str, default: Any = None) -> Any:
    """``d['a']['b']`` for ``'a.b'``; ``default`` when any part is missing."""
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return default
        d = d[part]
    return d


def find_runs(root: str | Path, scale: str | None = None) -> list[dict]:
    """Every completed run's metrics.json under ``root`` (recursively), optionally of one ``scale``."""
    runs = []
    for f in sorted(Path(root).rglob("metrics.json")):
        rec = json.loads(f.read_text())
        if rec.get("status", "completed") != "completed":
            continue
        if scale not in (None, "any") and rec.get("scale") not in (scale, None):
            continue
        rec["_path"] = str(f)
        runs.append(rec)
    return runs


@dataclass
class Agg:
    """A metric aggregated over seeds."""

    mean: float
    std: float
    n: int

    def fmt(self, digits: int = 4) -> str:
        if self.n == 1 or not np.isfinite(self.mean):
            return f"{self.mean:.{digits}g} (n={self.n})"
        return f"{self.mean:.{digits}g} ± {self.std:.2g} (n={self.n})"


def _key_tuple(keys: list[str], mapping_or_config: dict, dotted: bool) -> tuple:
    if dotted:
        return tuple(get_dotted(mapping_or_config, k) for k in keys)
    return tuple(mapping_or_config.get(k) for k in keys)


def _number(v: Any) -> float | None:
    """A metric value as a float: numbers, and the strings "nan"/"inf"/"-inf" that metrics.json uses for
    non-finite values (JSON has none). Anything else (lists, text) is not a number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and v.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return float(v)
    return None


def aggregate(runs: list[dict], keys: list[str], metrics: list[str]) -> dict[tuple, dict[str, Agg]]:
    """Group runs by the values of ``keys`` in their configs; mean, sample std and n of each metric.

    Non-finite seeds are kept (a NaN seed makes the mean NaN): a method that diverges on one seed must not
    look good by silently losing that seed."""
    groups: dict[tuple, dict[str, list[float]]] = {}
    for rec in runs:
        k = _key_tuple(keys, rec.get("config", {}), dotted=True)
        for m in metrics:
            v = _number(rec.get("metrics", {}).get(m))
            if v is not None:
                groups.setdefault(k, {}).setdefault(m, []).append(v)
    with np.errstate(invalid="ignore"):
        return {k: {m: Agg(float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
                    for m, v in ms.items()} for k, ms in groups.items()}


def _match(k: tuple, keys: list[str], want: dict) -> bool:
    return all(str(k[keys.index(f)]) == str(v) for f, v in want.items())


def _side(side: Any, metric: str, keys: list[str], agg: dict) -> float | None:
    if isinstance(side, (int, float)):
        return float(side)
    hits = [a[metric] for k, a in agg.items() if _match(k, keys, side) and metric in a]
    if len(hits) != 1:
        return None  # absent, or ambiguous (the claim's keys must pick exactly one row)
    return hits[0].mean


def _paired(c: dict, keys: list[str], runs: list[dict]) -> tuple[float | None, float | None, int, int]:
    """(lhs mean, rhs mean, pairs where the relation holds, pairs) of a ``paired`` claim; (None, None, 0, 0) when
    a run lacks a partner, a pairing value repeats on one side, or nothing matches."""
    sides = []
    for side in (c["lhs"], c["rhs"]):
        vals: dict[str, float] = {}
        for rec in runs:
            cfg = rec.get("config", {})
            if not _match(_key_tuple(keys, cfg, dotted=True), keys, side):
                continue
            v = _number(rec.get("metrics", {}).get(c["metric"]))
            pid = str(get_dotted(cfg, c["paired"]))
            if v is None or pid in vals:
                return None, None, 0, 0  # a missing metric, or two runs for one pair: not a clean pairing
            vals[pid] = v
        sides.append(vals)
    lhs, rhs = sides
    if not lhs or set(lhs) != set(rhs):
        return None, None, 0, 0
    ids = sorted(lhs)
    # NaN never supports a claim; inf compares as a number (e.g. "epochs to reach X" = inf: never reached)
    f = float(c.get("factor", 1.0))
    held = sum(bool(not (np.isnan(lhs[i]) or np.isnan(rhs[i])) and OPS[c["op"]](lhs[i], f * rhs[i])) for i in ids)
    return float(np.mean([lhs[i] for i in ids])), f * float(np.mean([rhs[i] for i in ids])), held, len(ids)


def check_claims(spec: dict, agg: dict, scale: str, runs: list[dict] | None = None) -> list[dict]:
    """Evaluate every claim of ``scale`` (or ``any``): status held | broken | missing, with both sides.
    A ``paired`` claim (needs ``runs``) holds only when the relation holds for every pair."""
    out = []
    for c in spec["claims"]:
        if c["scale"] not in ("any", scale):
            continue
        if c.get("paired"):
            lhs, rhs, held, n = _paired(c, spec["keys"], runs or [])
            status = "missing" if n < max(1, int(c.get("min_pairs", 1))) else ("held" if held == n else "broken")
            out.append({**c, "lhs_value": lhs, "rhs_value": rhs, "status": status, "pairs": f"{held}/{n}"})
            continue
        lhs, rhs = (_side(c[s], c["metric"], spec["keys"], agg) for s in ("lhs", "rhs"))
        rhs = None if rhs is None else float(c.get("factor", 1.0)) * rhs
        if lhs is None or rhs is None:
            status = "missing"
        elif not (np.isfinite(lhs) and np.isfinite(rhs)):
            status = "broken"  # a NaN/inf side never supports a claim
        else:
            status = "held" if OPS[c["op"]](lhs, rhs) else "broken"
        out.append({**c, "lhs_value": lhs, "rhs_value": rhs, "status": status})
    return out


def _fmt_keys(k: tuple) -> str:
    return ", ".join("–" if v is None else str(v) for v in k)


def render_markdown(spec: dict, agg: dict, claims: list[dict], scale: str, command: str = "") -> str:
    """The results table (keys | metric | paper | ours | delta | ok) and the claims, as markdown."""
    keys, metrics, tol = spec["keys"], spec["metrics"], spec.get("tolerance")
    src = spec["source"]
    lines = ["<!-- generated by shared.results; edit results/paper.yaml or rerun, never this file -->",
             f"# Results ({scale} scale)", ""]
    if command:
        lines += [f"Reproduce: `{command}`", ""]
    where = src.get("where", "") if isinstance(src, dict) else src
    arxiv = src.get("arxiv", "") if isinstance(src, dict) else ""
    lines += [f"Paper: arXiv {arxiv} {where}. Lower is better: "
              f"{'no' if spec['higher_is_better'] else 'yes'}. Paper numbers marked * are not verified "
              "against the PDF and are never judged.", "",
              "| " + " | ".join([", ".join(keys), "metric", "paper", "ours (mean ± std, n seeds)", "delta", "ok"])
              + " |", "|" + "---|" * 6]
    paper_rows = {}
    for row in spec["rows"]:
        if row["scale"] in (scale, "any"):
            paper_rows[_key_tuple(keys, row["keys"], dotted=False)] = row
    all_keys = sorted(dict.fromkeys(list(agg) + list(paper_rows)), key=lambda k: tuple(map(str, k)))
    for k in all_keys:
        prow = paper_rows.get(k)
        for m in metrics:
            ours = agg.get(k, {}).get(m)
            pval = (prow or {}).get("values", {}).get(m) if prow else None
            verified = bool(prow and prow["verified"])
            ptxt = "–" if pval is None else f"{pval:.4g}{'' if verified else '*'}"
            otxt = ours.fmt() if ours else "–"
            delta, ok = "–", "–"
            if ours is not None and pval is not None:
                delta = f"{ours.mean - pval:+.3g}"
                if verified and tol is not None:
                    ok = "yes" if abs(ours.mean - pval) <= tol else "NO"
            if ours is None and pval is None:
                continue
            lines.append(f"| {_fmt_keys(k)} | {m} | {ptxt} | {otxt} | {delta} | {ok} |")
    if claims:
        lines += ["", "## Claims", "", "| claim | metric | lhs | op | rhs | status |", "|---|---|---|---|---|---|"]
        for c in claims:
            fmt = lambda v: "–" if v is None else f"{v:.4g}"  # noqa: E731
            pairs = f" ({c['pairs']} pairs)" if c.get("pairs") else ""
            lines.append(f"| {c['name']} | {c['metric']} | {fmt(c['lhs_value'])} | {c['op']} | "
                         f"{fmt(c['rhs_value'])} | {c['status']}{pairs} |")
        held = sum(c["status"] == "held" for c in claims)
        lines += ["", f"claims: {held}/{len(claims)} held"]
    return "\n".join(lines) + "\n"


def summarize(project_dir: str | Path, scale: str = "mini", runs_root: str | Path | None = None,
              out: str | Path | None = None, command: str = "", claims: bool = True) -> tuple[str, list[dict]]:
    """Read paper.yaml and the runs, write ``results/<scale>.md``, return (markdown, claims)."""
    project_dir = Path(project_dir)
    spec = load_paper_yaml(project_dir / "results" / "paper.yaml")
    runs_root = Path(runs_root) if runs_root else project_dir / "outputs" / scale
    runs = find_runs(runs_root, scale) if runs_root.exists() else []
    agg = aggregate(runs, spec["keys"], sorted(set(spec["metrics"]) | {c["metric"] for c in spec["claims"]}))
    claims = check_claims(spec, agg, scale, runs) if claims else []
    md = render_markdown(spec, agg, claims, scale, command)
    out = Path(out) if out else project_dir / "results" / f"{'full' if scale == 'paper' else scale}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    return md, claims


def paste_into_readme(readme: str | Path, md: str) -> None:
    """Replace the block between ``<!-- results:begin`` and ``<!-- results:end -->`` of ``readme`` with ``md``
    (its first-level heading demoted), so a README's results table is generated, never typed."""
    path = Path(readme)
    text = path.read_text()
    begin, end = text.find("<!-- results:begin"), text.find("<!-- results:end -->")
    if begin < 0 or end < begin:
        raise ValueError(f"{path} lacks the markers <!-- results:begin ... --> and <!-- results:end -->")
    head_end = text.index("-->", begin) + 3
    body = md.replace("\n# Results", "\n### Results").replace("\n## Claims", "\n#### Claims")
    path.write_text(text[:head_end] + "\n" + body + text[end:])


def main(argv=None) -> int:
    """CLI: ``python -m shared.results <project_dir> [--scale mini] [--runs DIR] [--check]``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("project_dir")
    p.add_argument("--scale", default="mini", choices=["mini", "paper"])
    p.add_argument("--runs", default=None,
                   help="run root holding metrics.json files (default <project>/outputs/<scale>)")
    p.add_argument("--out", default=None, help="markdown file to write (default <project>/results/<scale>.md)")
    p.add_argument("--command", default="", help="the command that reproduces these runs, printed in the table")
    p.add_argument("--check", action="store_true", help="exit 1 when a claim is broken or missing")
    p.add_argument("--allow-missing", action="store_true",
                   help="with --check, fail only on broken claims (a partial paper-scale table leaves some missing)")
    p.add_argument("--no-claims", action="store_true",
                   help="render the table only (runs outside the claims' rows, e.g. an exploratory setting)")
    p.add_argument("--readme", default=None,
                   help="also paste the table into this README between its results:begin/end markers")
    a = p.parse_args(argv)
    try:
        md, claims = summarize(a.project_dir, a.scale, a.runs, a.out, a.command, claims=not a.no_claims)
        if a.readme:
            paste_into_readme(a.readme, md)
    except (PaperYamlError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(md)
    bad = [c for c in claims if c["status"] == "broken" or (c["status"] == "missing" and not a.allow_missing)]
    if a.check and bad:
        for c in bad:
            print(f"claim {c['status']}: {c['name']} ({c['lhs_value']} {c['op']} {c['rhs_value']})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
