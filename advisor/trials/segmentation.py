"""The trial side of the segmentation head kind: images (C, H, W) with masks of class indices (or, for a head
whose classes overlap, (K, H, W) 0/1 channels), a stacked U-Net, and the dense output adapter
(:class:`advisor.trials.kinds.KindTrials`)."""

from __future__ import annotations

import math

import numpy as np

from advisor.spec import LossSpec
from advisor.task import Head, TaskDescription
from advisor.trials.adapters import SIGMOID_LOSSES, Adapter
from advisor.trials.data import TrialData
from advisor.trials.kinds import KindTrials
from advisor.trials.synthetic import synthetic_rows
from advisor.trials.trainer import ModelFactory, TrainConfig, unet_factory

IMAGE_SIZE = 24  # pixels a side of the synthetic images
# A dense member costs far more per row than a tabular one: this cap keeps a trial within seconds on two cores.
MAX_IMAGES = 600
# A trial costs about the same per pixel whatever the images: the user's images get the pixels of the synthetic
# set (MAX_IMAGES of IMAGE_SIZE x IMAGE_SIZE), so larger images come fewer, but never fewer than MIN_IMAGES
# (a score part of 15 images: split noise grows fast below that).
IMAGE_PIXELS = MAX_IMAGES * IMAGE_SIZE**2
MIN_IMAGES = 100


def image_rows(pixels: int) -> int:
    """Images of ``pixels`` pixels each that a segmentation trial trains on at most."""
    return min(MAX_IMAGES, max(MIN_IMAGES, IMAGE_PIXELS // max(pixels, 1)))


def rows(x: np.ndarray, head: Head, max_rows: int) -> int:
    """Images (N, C, H, W) a trial keeps: :func:`image_rows` of their size, at most ``max_rows``."""
    return min(max_rows, image_rows(x.shape[-2] * x.shape[-1]))


def adapter(head: Head, spec: LossSpec) -> Adapter:
    """One channel per class, or a single sigmoid channel for two classes under a sigmoid-style loss; for
    overlapping classes one sigmoid channel per class with (n, K, H, W) float targets, whatever the loss (the
    rules propose only per-channel sigmoid losses for such a head)."""
    if head.overlapping_classes:
        return Adapter("channels", head.num_classes or 2, float_target=True)
    loss, params = spec.loss, spec.params
    classes = head.num_classes or 2
    single = classes == 2 and (
        loss in SIGMOID_LOSSES or params.get("activation") == "sigmoid" or params.get("variant") == "hinge"
    )
    return Adapter(
        "dense",
        1 if single else classes,
        log_probs_input=loss == "nll",
        float_target=single and loss in SIGMOID_LOSSES,
    )


def model(data: TrialData, config: TrainConfig) -> ModelFactory:
    """Stacked small U-Nets over the images' channels."""
    return unet_factory(data.x.shape[1], config)


def generate(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images with round blobs per foreground class covering the stated share of pixels, on noise.

    Exclusive classes give (n, H, W) class indices (a later class's blob covers an earlier one's). Overlapping
    classes give (n, K, H, W) 0/1 channels with each channel's blob placed on its own, so blobs overlap where
    they meet; the image adds a level 2^k per channel k, so every combination of channels has its own level.
    """
    rng = np.random.default_rng(seed)
    classes = head.num_classes or 2
    foreground = classes if head.overlapping_classes else classes - 1  # overlapping classes: no background
    shares = head.foreground_shares or [0.1] * foreground
    count, size = min(synthetic_rows(task, limit), MAX_IMAGES), IMAGE_SIZE
    yy, xx = np.mgrid[:size, :size]
    blobs = []
    for share in shares:
        area = max(share, 1.0 / size**2) * size * size
        radius = np.sqrt(area / math.pi) * rng.uniform(0.7, 1.3, count)
        centres = rng.uniform(radius[:, None], size - radius[:, None], (count, 2))
        blobs.append(
            ((yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2)
            <= radius[:, None, None] ** 2
        )
    if head.overlapping_classes:
        masks = np.stack(blobs, axis=1).astype(np.int64)
        levels = 1.5 * 2.0 ** np.arange(classes) / (2.0**classes - 1)  # all channels on: 1.5
        intensity = np.tensordot(levels, masks, axes=(0, 1))
    else:
        masks = np.zeros((count, size, size), dtype=np.int64)
        for c, inside in enumerate(blobs, start=1):
            masks[inside] = c
        intensity = np.linspace(0.0, 1.5, classes)[masks]
    images = intensity + 0.6 * rng.normal(size=intensity.shape)
    return images[:, None].astype(np.float32), masks


SEGMENTATION = KindTrials(adapter=adapter, generate=generate, model=model, rows=rows)
