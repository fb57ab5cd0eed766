"""Re-folder Tiny-ImageNet-200's val/ by class so torchvision's ImageFolder reads it (run once, on the cluster).

    wget http://cs231n.stanford.edu/tiny-imagenet-200.zip && unzip tiny-imagenet-200.zip
    python scripts/prepare_tiny_imagenet.py tiny-imagenet-200

train/<wnid>/images/*.JPEG already works with ImageFolder; val/images/* + val/val_annotations.txt become
val/<wnid>/*.JPEG (files are moved, the annotation file kept).
"""
import argparse
import sys
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="the unzipped tiny-imagenet-200 folder")
    root = Path(p.parse_args().root)
    ann = root / "val" / "val_annotations.txt"
    if not ann.exists():
        print(f"{ann} not found: pass the unzipped tiny-imagenet-200 folder", file=sys.stderr)
        return 2
    moved = 0
    for line in ann.read_text().splitlines():
        name, wnid = line.split("\t")[:2]
        src = root / "val" / "images" / name
        if src.exists():
            (root / "val" / wnid).mkdir(exist_ok=True)
            src.replace(root / "val" / wnid / name)
            moved += 1
    print(f"moved {moved} validation images into {root / 'val'}/<wnid>/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
