"""Count sample tiles with bright smears at the image border (a defect the SWD and C2ST miss).

A head slice of the demo study lies on black air: no real slice has bright pixels within a
few pixels of its left, right or top edge (the bottom can hold the neck). This script reads
sample grids written by ``recipe_study.py``/``bench_quality.py`` (64² tiles, 8 per row, no
padding) and counts the tiles whose 6-pixel left, right or top band has more than 2 % of its
pixels above a grey value (50 and 100 of 255).

    .venv/bin/python benchmarks/border_artefacts.py /tmp/ms/b16s2_final.png /tmp/ms/ms01s2_final.png
    .venv/bin/python benchmarks/border_artefacts.py --real    # the same count on 64 real slices
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TILE = 64
BAND = 6
SHARE = 0.02


def tiles_of(grid: np.ndarray, tile: int = TILE) -> np.ndarray:
    """Split a grid image (rows × cols tiles, no padding) into an (n, tile, tile) array."""
    rows, cols = grid.shape[0] // tile, grid.shape[1] // tile
    return grid[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile).swapaxes(1, 2).reshape(-1, tile, tile)


def smeared(tile: np.ndarray, level: int) -> bool:
    """Whether the left, right or top band of a uint8 tile holds more than SHARE bright pixels."""
    bands = (tile[:, :BAND], tile[:, -BAND:], tile[:BAND, :])
    return any(float((band > level).mean()) > SHARE for band in bands)


def count(tiles: np.ndarray) -> dict[int, int]:
    """Tiles with a smear, per brightness level."""
    return {level: sum(smeared(t, level) for t in tiles) for level in (50, 100)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grids", nargs="*", type=Path)
    parser.add_argument("--real", action="store_true", help="count 64 real training slices")
    args = parser.parse_args()
    from PIL import Image

    if args.real:
        import bench_quality as bq

        real = bq._training_set().images[:64]
        tiles = ((np.clip(real, -1, 1) + 1) * 127.5).round().astype(np.uint8)
        print("real", len(tiles), "tiles:", count(tiles))
    for path in args.grids:
        tiles = tiles_of(np.asarray(Image.open(path).convert("L")))
        print(path.name, len(tiles), "tiles:", count(tiles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
