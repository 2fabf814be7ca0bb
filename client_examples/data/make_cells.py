"""Generate ``cells.npz``: a small segmentation set for trying ``advisor.profile`` and ``recommend`` on images.

48 grey images of 32 x 32 pixels (``images``, uint8, shape (48, 32, 32)) with their masks (``masks``, uint8
class indices, shape (48, 32, 32)): class 1 is a few small bright "cells" (discs of radius 1 to 2 pixels, well
under 1% of the image each) on a noisy background, and 40% of the images hold none, so the profile shows
small objects and many empty masks.

Run from the repository root to rewrite the committed file (the seed fixes the arrays)::

    python client_examples/data/make_cells.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 2024
N_IMAGES = 48
SIDE = 32
EMPTY_SHARE = 0.4
OUTPUT = Path(__file__).with_name("cells.npz")


def make_cells(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(images, masks) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:SIDE, :SIDE]
    masks = np.zeros((N_IMAGES, SIDE, SIDE), dtype=np.uint8)
    for mask in masks[int(EMPTY_SHARE * N_IMAGES) :]:
        for _ in range(rng.integers(2, 6)):
            centre, radius = rng.uniform(3, SIDE - 3, 2), rng.uniform(1.0, 2.0)
            mask[(rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2] = 1
    order = rng.permutation(N_IMAGES)  # empty masks spread through the file
    masks = masks[order]
    images = np.clip(60 + 120 * masks + rng.normal(0, 25, masks.shape), 0, 255).astype(np.uint8)
    return images, masks


if __name__ == "__main__":
    images, masks = make_cells()
    np.savez_compressed(OUTPUT, images=images, masks=masks)
    print(f"wrote {OUTPUT} ({len(images)} images, {masks.mean():.2%} foreground)")
