"""Write WikiText-103 (raw) as wiki.{train,valid,test}.raw text files for data=wikitext103 (needs network and the
`datasets` package from requirements-full.txt; run once).

    python scripts/prepare_wikitext103.py data/wikitext-103-raw
"""
import argparse
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="folder to write wiki.train.raw, wiki.valid.raw, wiki.test.raw into")
    out = Path(p.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    from datasets import load_dataset

    ds = load_dataset("Salesforce/wikitext", "wikitext-103-raw-v1")
    for split, name in (("train", "wiki.train.raw"), ("validation", "wiki.valid.raw"), ("test", "wiki.test.raw")):
        (out / name).write_text("".join(ds[split]["text"]), encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
