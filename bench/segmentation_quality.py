"""How good are the advisor's segmentation picks? ``shared/selection.md``, "Measuring the advisor", for masks.

No package on this project's registries ships a real segmentation set with masks for offline use
(scikit-image's data module bundles a few images but no mask sets, and its larger sets download on first use;
MedMNIST, Cellpose and MONAI download their data), so the suite is generated, here, deterministically:
eight sets of 160 grey 32 x 32 images that differ in the traits the rules read (balanced large objects, an IoU
metric, small objects, rare tiny objects, many empty masks, thin structures, three foreground classes, small
objects with many empty masks). Images are made hard on purpose: textured, unevenly lit backgrounds whose
intensity overlaps the objects', per-image object brightness, unlabelled distractor objects of the same
brightness, blur and noise.

For every set (metric fixed in advance: Dice, IoU for one):

1. the advisor runs through its public API alone, ``advisor.recommend((images, masks), metric=metric,
   epochs=10, repeats=3, cache=False)`` (a stated small budget: defaults train 50 epochs and up to 10 repeats,
   about 300 s a set on this machine), on all 160 images; its top pick, wall and CPU seconds are kept;
2. the ground truth, by code of its own here (nothing from ``advisor.trials``, ``advisor.ranking`` or the
   advisor's metrics), trains every pool entry (each rule candidate for the profiled task, the default loss
   -- the baseline rule's Dice + CE -- plain cross-entropy and plain soft Dice, and the advisor's top pick when
   it is none of those) with ``advisor.build_loss(spec)``: a U-Net of its own (:class:`TruthUNet`: two 3x3
   conv-BatchNorm-ReLU per level, 16 / 32 / 64 channels over three resolutions, max-pooling, transposed-conv
   upsampling; twice the trial net's width at every resolution and twice its depth), AdamW (lr
   1e-3, weight decay 1e-4), batches of 16, 30 epochs, the best validation epoch kept, on 3 seeds, each with a
   fresh 60/20/20 split stratified on whether an image holds foreground; every loss of a seed starts from the
   same weights and sees the same batches. Dice and IoU are computed here with numpy: per image and
   foreground class 2|P & T| / (|P| + |T|) (IoU |P & T| / |P | T|), 1 when the class is absent from both,
   averaged over classes and images. Results are cached per (set, entry, seed, protocol) under
   ``bench/truth_cache/segmentation/``;
3. scores: the tie set (entries whose paired two-level bootstrap 95% interval of the difference to the best
   includes 0: seeds resampled, then test images within each seed), hit@1, normalised regret (best - pick) /
   (best - worst) of the means over seeds, beside constant policies (always the default loss, always plain
   CE, always plain Dice), and the advisor's CPU seconds beside the ground truth's.

Run from the repository root::

    python -m bench.segmentation_quality [--only a,b] [--jobs N] [--truth-only] [--out FILE.md]

A full run from an empty cache costs about 2,300 CPU seconds (135 trainings of about 15 s, the advisor about 170 s):
about 20 minutes with ``--jobs 2`` on 2 idle cores (53 minutes on this shared machine at load 3-5). With the
cache full only the advisor trains (about 3 minutes). It reports misses and always exits 0.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.model_selection import train_test_split
from torch import nn

import advisor
from advisor import LossSpec, TaskDescription
from advisor.rules import candidates_from, load_rules
from advisor.rules.engine import context_for, evaluate
from bench.scoring import Entry, read_truth, regret, render, write_truth

SIDE = 32
IMAGES = 160
SEEDS = 3
# Everything that decides a ground-truth result; part of every cache key.
PROTOCOL = {
    "version": 1,
    "widths": [16, 32, 64],
    "convs_per_level": 2,
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "batch": 16,
    "epochs": 30,
    "split": [0.6, 0.2, 0.2],
}
ADVISOR = {"epochs": 10, "repeats": 3}
CACHE_DIR = Path(__file__).parent / "truth_cache" / "segmentation"
BOOTSTRAP_DRAWS = 2_000
BASELINE_RULE = "segmentation-baseline-dice-ce"  # "the default segmentation loss"
DEFAULT_LABEL = "default"
FIXED_POOL = [("fixed:ce", {"loss": "cross_entropy"}), ("fixed:dice", {"loss": "dice"})]
POLICIES = {
    "always the default loss": DEFAULT_LABEL,
    "always plain CE": "fixed:ce",
    "always plain Dice": "fixed:dice",
}


# ----------------------------------------------------------------------------------------------------------
# The generated sets


def _field(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """n smooth random fields (white noise blurred by ``sigma`` px, wrapped), each to mean 0 and sd 1."""
    values = ndimage.gaussian_filter(rng.normal(size=(n, SIDE, SIDE)), sigma=(0, sigma, sigma), mode="wrap")
    values -= values.mean(axis=(1, 2), keepdims=True)
    return values / values.std(axis=(1, 2), keepdims=True)


def _blobs(rng: np.random.Generator, fill: float) -> np.ndarray:
    """Large smooth objects covering ``fill`` of the image (skimage's binary_blobs, by hand): a smooth field
    above its (1 - fill) quantile."""
    values = _field(rng, 1, 3.5)[0]
    return values > np.quantile(values, 1 - fill)


def _ellipses(rng: np.random.Generator, radii: tuple[float, float], count: int) -> np.ndarray:
    """``count`` ellipses with mean radius in ``radii``, axis ratio up to 1.4, random orientation."""
    rows, cols = np.mgrid[:SIDE, :SIDE]
    mask = np.zeros((SIDE, SIDE), dtype=bool)
    for _ in range(count):
        radius, ratio, angle = rng.uniform(*radii), rng.uniform(0.7, 1.4), rng.uniform(0, np.pi)
        centre = rng.uniform(radius, SIDE - radius, 2)
        dy, dx = rows - centre[0], cols - centre[1]
        u, v = dy * np.cos(angle) + dx * np.sin(angle), dx * np.cos(angle) - dy * np.sin(angle)
        mask |= (u / (radius * ratio)) ** 2 + (v * ratio / radius) ** 2 <= 1
    return mask


def _curves(rng: np.random.Generator, count: int, width: float) -> np.ndarray:
    """``count`` vessels: smooth random walks (heading noise 0.2 rad a half-pixel step, at most 40 px long),
    every pixel within width / 2 of the path; 4-connected, so each vessel is one object."""
    rows, cols = np.mgrid[:SIDE, :SIDE]
    pixels = np.stack([rows.ravel(), cols.ravel()], 1).astype(float)
    mask = np.zeros(SIDE * SIDE, dtype=bool)
    for _ in range(count):
        point, heading, path = rng.uniform(4, SIDE - 4, 2), rng.uniform(0, 2 * np.pi), []
        for _ in range(80):
            heading += rng.normal(0, 0.2)
            point = point + 0.5 * np.array([np.sin(heading), np.cos(heading)])
            if not (0 <= point[0] < SIDE and 0 <= point[1] < SIDE):
                break
            path.append(point)
        distance = np.sqrt(((pixels[:, None] - np.array(path)[None]) ** 2).sum(-1)).min(1)
        mask |= distance <= width / 2
    return mask.reshape(SIDE, SIDE)


def _render(
    rng: np.random.Generator, masks: np.ndarray, contrast: list[float], distractors: np.ndarray | None = None,
    *, noise: float = 0.6, blur: float = 0.8,
) -> np.ndarray:  # fmt: skip
    """(n, 1, SIDE, SIDE) images of class masks: a background of two smooth fields (texture at 3 px, uneven
    light at 8 px; sd about 0.8), class c brighter by contrast[c - 1] x a per-image gain in [0.6, 1.4] plus a
    fine texture, unlabelled distractors as bright as a dim object, then a Gaussian blur and white noise."""
    n = len(masks)
    image = 0.5 * _field(rng, n, 3.0) + 0.6 * _field(rng, n, 8.0)
    texture = 0.3 * _field(rng, n, 1.0)
    for c, level in enumerate(contrast, start=1):
        image += (masks == c) * (rng.uniform(0.6, 1.4, (n, 1, 1)) * level + texture)
    if distractors is not None:
        image += distractors * rng.uniform(0.4, 0.9, (n, 1, 1)) * contrast[0]
    image = ndimage.gaussian_filter(image, sigma=(0, blur, blur)) + noise * rng.normal(size=image.shape)
    return image[:, None].astype(np.float32)


def _per_image(draw: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``draw()``'s (mask, distractors) over the images."""
    masks, distractors = zip(*(draw() for _ in range(IMAGES)), strict=True)
    return np.stack(masks).astype(np.int64), np.stack(distractors).astype(float)


def _large_blobs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    masks = np.stack([_blobs(rng, rng.uniform(0.25, 0.45)) for _ in range(IMAGES)]).astype(np.int64)
    return _render(rng, masks, [1.2], noise=0.7), masks


def _small_cells(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def draw() -> tuple[np.ndarray, np.ndarray]:
        cells = _ellipses(rng, (1.0, 2.2), int(rng.integers(3, 9)))
        return cells, _ellipses(rng, (1.0, 2.2), int(rng.integers(0, 4))) & ~cells

    masks, distractors = _per_image(draw)
    return _render(rng, masks, [1.6], distractors), masks


def _rare_tiny(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def draw() -> tuple[np.ndarray, np.ndarray]:
        spots = _ellipses(rng, (0.8, 1.6), int(rng.choice([0, 1, 1, 2])))
        return spots, _ellipses(rng, (0.8, 1.6), int(rng.integers(0, 3))) & ~spots

    masks, distractors = _per_image(draw)
    return _render(rng, masks, [1.8], distractors), masks


def _empty_masks(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def draw() -> tuple[np.ndarray, np.ndarray]:
        lesions = _ellipses(rng, (3.5, 6.5), int(rng.integers(1, 3))) if rng.random() < 0.4 else _none()
        return lesions, _ellipses(rng, (2.0, 4.0), int(rng.integers(0, 3))) & ~lesions

    masks, distractors = _per_image(draw)
    return _render(rng, masks, [1.3], distractors, noise=0.7), masks


def _thin_vessels(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def draw() -> tuple[np.ndarray, np.ndarray]:
        return _curves(rng, int(rng.integers(2, 4)), rng.uniform(1.5, 2.2)), _none()

    masks, _ = _per_image(draw)
    return _render(rng, masks, [1.4], blur=0.6), masks


def _three_classes(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def draw() -> tuple[np.ndarray, np.ndarray]:
        large = _blobs(rng, rng.uniform(0.15, 0.3))
        medium = _ellipses(rng, (3.0, 5.0), int(rng.integers(1, 3))) & ~large
        small = _ellipses(rng, (1.0, 1.8), int(rng.integers(2, 6))) & ~large & ~medium
        return large * 1 + medium * 2 + small * 3, _none()

    masks, _ = _per_image(draw)
    return _render(rng, masks, [0.9, 1.6, 2.2], noise=0.7), masks


def _cells_mixed(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def draw() -> tuple[np.ndarray, np.ndarray]:
        cells = _ellipses(rng, (1.0, 2.0), int(rng.integers(2, 6))) if rng.random() < 0.55 else _none()
        return cells, _ellipses(rng, (1.0, 2.0), int(rng.integers(0, 3))) & ~cells

    masks, distractors = _per_image(draw)
    return _render(rng, masks, [1.6], distractors), masks


def _none() -> np.ndarray:
    return np.zeros((SIDE, SIDE), dtype=bool)


@dataclass(frozen=True)
class SegmentationSet:
    """A generated set: its name, the trait it is made for, its metric and its generator."""

    name: str
    trait: str
    metric: str
    make: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]


SETS = [
    SegmentationSet("large_blobs", "balanced large objects (25-45% of the image)", "dice", _large_blobs),
    SegmentationSet("large_blobs_iou", "the same kind of objects, judged by IoU", "iou", _large_blobs),
    SegmentationSet("small_cells", "3-8 small cells (radius 1-2 px) and distractors", "dice", _small_cells),
    SegmentationSet("rare_tiny", "0-2 tiny spots (radius 1-1.6 px): foreground < 1%", "dice", _rare_tiny),
    SegmentationSet("empty_masks", "60% of images without the object; distractors", "dice", _empty_masks),
    SegmentationSet("thin_vessels", "2-3 curvilinear vessels 1.5-2 px wide", "dice", _thin_vessels),
    SegmentationSet("three_classes", "3 foreground classes: large, medium, small", "dice", _three_classes),
    SegmentationSet("cells_mixed", "small cells, 45% of images empty; distractors", "dice", _cells_mixed),
]
BY_NAME = {s.name: s for s in SETS}


@functools.cache
def generate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 1, SIDE, SIDE) float32, masks (n, SIDE, SIDE) int64) of a set, from a seed of its name."""
    return BY_NAME[name].make(np.random.default_rng(zlib.crc32(name.encode())))


# ----------------------------------------------------------------------------------------------------------
# The pool


def profile_task(name: str) -> TaskDescription:
    """The task profiled from the whole set, with the set's metric."""
    images, masks = generate(name)
    task = advisor.profile((images, masks))
    head = task.heads[0].model_copy(update={"metric": BY_NAME[name].metric})
    return task.model_copy(update={"heads": [head]})


def build_pool(task: TaskDescription) -> list[Entry]:
    """The default loss (the baseline rule's spec, whether or not a more specific rule with the same spec
    shadows it), every rule candidate for the task and the fixed pool, one entry per spec."""
    rules = load_rules()
    baseline = next(rule for rule in rules.active() if rule.id == BASELINE_RULE)
    default = evaluate(baseline, context_for(task, task.heads[0].name))
    if default is None:
        raise RuntimeError(f"rule {BASELINE_RULE} no longer applies to every segmentation head")
    proposals = [(DEFAULT_LABEL, default.spec)]
    for candidate in candidates_from(rules, task):
        proposals += [(rule, candidate.spec) for rule in [candidate.rule_id, *candidate.also_proposed_by]]
    proposals += [(label, advisor.normalize_spec(spec)) for label, spec in FIXED_POOL]
    entries: dict[str, Entry] = {}
    for label, spec in proposals:
        if spec.to_json() in entries:
            entries[spec.to_json()].labels.append(label)
        else:
            entries[spec.to_json()] = Entry([label], spec)
    return list(entries.values())


# ----------------------------------------------------------------------------------------------------------
# Ground truth: its own U-Net, training loop, splits and metric


class TruthUNet(nn.Module):
    """A plain U-Net: per level two conv3-BatchNorm-ReLU; max-pool 2 down, transposed conv 2 up, skip
    concatenation, conv1 to the class logits. ``widths`` per level (16, 32, 64: three resolutions)."""

    def __init__(self, in_channels: int, widths: list[int], classes: int) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for index in range(PROTOCOL["convs_per_level"]):
                layers += [nn.Conv2d(c_in if index == 0 else c_out, c_out, 3, padding=1, bias=False)]
                layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
            return nn.Sequential(*layers)

        self.down = nn.ModuleList(
            block(a, b) for a, b in zip([in_channels, *widths[:-1]], widths, strict=True)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(len(widths) - 1)
        )
        self.merge = nn.ModuleList(block(2 * widths[i], widths[i]) for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.down):
            if level:
                skips.append(x)
                x = F.max_pool2d(x, 2)
            x = block(x)
        for level in reversed(range(len(self.up))):
            x = self.merge[level](torch.cat([self.up[level](x), skips[level]], dim=1))
        return self.head(x)


def split_rows(masks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fresh 60/20/20 train / validation / test split, stratified on whether an image holds foreground."""
    strata, rows = (masks.reshape(len(masks), -1).max(1) > 0).astype(int), np.arange(len(masks))
    development, test = train_test_split(rows, test_size=0.2, random_state=seed, stratify=strata)
    train, val = train_test_split(
        development, test_size=0.25, random_state=seed, stratify=strata[development]
    )
    return train, val, test


def overlap(predicted: np.ndarray, truth: np.ndarray, classes: int, jaccard: bool) -> np.ndarray:
    """Per image: the mean over foreground classes of Dice 2|P & T| / (|P| + |T|) (IoU: |P & T| / |P | T|),
    1 for a class absent from both prediction and truth."""
    predicted, truth = predicted.reshape(len(truth), -1), truth.reshape(len(truth), -1)
    per_class = []
    for c in range(1, classes):
        p, t = predicted == c, truth == c
        inter, total = (p & t).sum(1), p.sum(1) + t.sum(1)
        value = inter / np.maximum(total - inter, 1) if jaccard else 2 * inter / np.maximum(total, 1)
        per_class.append(np.where(total == 0, 1.0, value))
    return np.mean(per_class, axis=0)


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def train_truth(name: str, seed: int, spec_json: str) -> dict[str, Any]:
    """Train one entry on one seed's split: the per-image test values at the best validation epoch, that epoch,
    its validation value and the CPU seconds."""
    torch.set_num_threads(1)
    started = time.process_time()
    images, masks = generate(name)
    classes, jaccard = int(masks.max()) + 1, BY_NAME[name].metric == "iou"
    train, val, test = split_rows(masks, seed)
    mean, std = images[train].mean(), images[train].std()
    x = torch.as_tensor((images - mean) / std).contiguous(memory_format=torch.channels_last)
    y = torch.as_tensor(masks)
    torch.manual_seed(_seed(name, seed, "init"))  # every loss of a seed starts from the same weights
    model = TruthUNet(1, PROTOCOL["widths"], classes).to(memory_format=torch.channels_last)
    loss = advisor.build_loss(LossSpec.model_validate_json(spec_json))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=PROTOCOL["lr"], weight_decay=PROTOCOL["weight_decay"]
    )
    order = torch.Generator().manual_seed(_seed(name, seed, "batches"))  # and sees the same batches
    best: dict[str, Any] = {"val": -math.inf, "epoch": 0, "test": [math.nan] * len(test)}

    def rate(rows: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            predicted = model(x[rows]).argmax(1).numpy()
        model.train()
        return overlap(predicted, masks[rows], classes, jaccard)

    for epoch in range(1, PROTOCOL["epochs"] + 1):
        permutation = torch.as_tensor(train)[torch.randperm(len(train), generator=order)]
        for start in range(0, len(train) - PROTOCOL["batch"] + 1, PROTOCOL["batch"]):  # full batches only
            rows = permutation[start : start + PROTOCOL["batch"]]
            value = loss(model(x[rows]), y[rows])
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        score = float(rate(val).mean())
        if score > best["val"]:
            best = {"val": score, "epoch": epoch, "test": rate(test).tolist()}
        if not torch.isfinite(value):
            break  # diverged: the best epoch so far stands
    return {
        "val": round(best["val"], 6), "epoch": best["epoch"], "test": [round(v, 6) for v in best["test"]],
        "cpu_s": round(time.process_time() - started, 2),
    }  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# The cache and the ground-truth runs


def cache_key(name: str, entry: Entry, seed: int) -> str:
    """Hash of what decides one result: the set (name and a digest of its arrays), the spec, the seed and the
    protocol settings."""
    images, masks = generate(name)
    data = hashlib.sha1(images.tobytes() + masks.tobytes()).hexdigest()[:12]
    payload = json.dumps([name, data, entry.key, seed, PROTOCOL])
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


@dataclass
class Case:
    """One set with its pool and, once run, the advisor's answer."""

    name: str
    pool: list[Entry]
    pick: int = -1  # pool index of the advisor's top pick
    advisor_wall_s: float = math.nan
    advisor_cpu_s: float = math.nan
    advisor_error: str = ""


def fill_truth(cases: list[Case], jobs: int, log: Callable[[str], None]) -> None:
    """Train every (set, entry, seed) missing from the cache, ``jobs`` processes of one thread each; the
    parent writes the cache."""
    work = [
        (case.name, seed, entry)
        for case in cases
        for cached in [read_truth(CACHE_DIR, case.name)]
        for entry in case.pool
        for seed in range(SEEDS)
        if cache_key(case.name, entry, seed) not in cached
    ]
    log(f"ground truth: {len(work)} trainings, {jobs} process(es)")

    def store(name: str, seed: int, entry: Entry, record: dict[str, Any]) -> None:
        records = read_truth(CACHE_DIR, name)
        records[cache_key(name, entry, seed)] = {"label": entry.labels[0], "seed": seed, **record}
        write_truth(CACHE_DIR, name, records)
        log(
            f"  {name} seed {seed} {entry.labels[0]}: {np.mean(record['test']):.3f} ({record['cpu_s']:.0f} CPU s)"
        )

    if jobs <= 1:
        threads = torch.get_num_threads()
        for name, seed, entry in work:
            store(name, seed, entry, train_truth(name, seed, entry.key))
        torch.set_num_threads(threads)
        return
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = {
            pool.submit(train_truth, name, seed, entry.key): (name, seed, entry) for name, seed, entry in work
        }
        for future in as_completed(futures):
            store(*futures[future], future.result())


@dataclass(frozen=True)
class Truth:
    """Ground truth of one set: per-image test values (entries, seeds, test images), larger is better."""

    values: np.ndarray
    cpu_s: float  # every entry's training, all seeds

    @property
    def means(self) -> np.ndarray:
        return self.values.mean(axis=(1, 2))


def load_truth(case: Case) -> Truth:
    records = read_truth(CACHE_DIR, case.name)
    found = [[records[cache_key(case.name, entry, seed)] for seed in range(SEEDS)] for entry in case.pool]
    values = np.array([[record["test"] for record in per_seed] for per_seed in found], dtype=float)
    return Truth(values, sum(record["cpu_s"] for per_seed in found for record in per_seed))


# ----------------------------------------------------------------------------------------------------------
# The advisor, through its public API


def run_advisor(case: Case, budget: dict[str, int], log: Callable[[str], None]) -> None:
    """``advisor.recommend`` on the whole set at ``budget`` (epochs, repeats); its top pick joins the pool when it is
    none of the entries."""
    images, masks = generate(case.name)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result = advisor.recommend(
            (images, masks), metric=BY_NAME[case.name].metric, cache=False, **budget
        )  # measured, never a cached answer
    except Exception as error:  # the bench reports any failure of the advisor as a miss
        case.advisor_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        log(f"  advisor failed: {case.advisor_error}")
        return
    case.advisor_wall_s, case.advisor_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    top = result.heads[0].candidates[0].spec
    keys = [entry.key for entry in case.pool]
    if top.to_json() not in keys:
        case.pool.append(Entry(["advisor:top"], top))
        keys.append(top.to_json())
    case.pick = keys.index(top.to_json())
    log(
        f"  advisor: {case.advisor_wall_s:.1f} s wall, {case.advisor_cpu_s:.1f} CPU s, "
        f"top {case.pool[case.pick].labels[0]}"
    )


# ----------------------------------------------------------------------------------------------------------
# Scores


def tie_set(values: np.ndarray, rng: np.random.Generator) -> set[int]:
    """Entries whose paired two-level bootstrap 95% interval of the mean difference to the best includes 0:
    each draw resamples the seeds, then the test images within each drawn seed (pairs stay paired: one image,
    one seed, every entry)."""
    means = values.mean(axis=(1, 2))
    best = int(np.argmax(means))
    seeds, images = values.shape[1:]
    drawn_seeds = rng.integers(0, seeds, (BOOTSTRAP_DRAWS, seeds))
    drawn_images = rng.integers(0, images, (BOOTSTRAP_DRAWS, seeds, images))
    tied = {best}
    for e in range(len(values)):
        differences = values[best] - values[e]  # (seeds, images)
        per_draw = differences[drawn_seeds[..., None], drawn_images].mean(axis=(1, 2))
        low, high = np.quantile(per_draw, [0.025, 0.975])
        if low <= 0 <= high:
            tied.add(e)
    return tied


@dataclass(frozen=True)
class Scores:
    best: int
    ties: frozenset[int]
    hit1: bool
    regret: float
    truth: Truth


def score_case(case: Case) -> Scores:
    truth = load_truth(case)
    ties = tie_set(truth.values, np.random.default_rng(_seed(case.name, "bootstrap")))
    best = int(np.argmax(truth.means))
    return Scores(best, frozenset(ties), case.pick in ties, regret(truth.means, case.pick), truth)


# ----------------------------------------------------------------------------------------------------------
# Report


def _label(case: Case, index: int) -> str:
    return case.pool[index].labels[0] if index >= 0 else "(none)"


def _index(case: Case, label: str) -> int:
    return next(i for i, entry in enumerate(case.pool) if label in entry.labels)


def set_rows(cases: list[Case]) -> list[dict[str, str]]:
    rows = []
    for case in cases:
        head = profile_task(case.name).heads[0]
        rows.append({
            "set": case.name, "trait": BY_NAME[case.name].trait, "metric": BY_NAME[case.name].metric,
            "classes": str(head.num_classes), "foreground": ", ".join(f"{v:.2%}" for v in head.foreground_shares),
            "absent": ", ".join(f"{v:.0%}" for v in head.absent_shares),
            "median object": ", ".join(f"{v:.2%}" for v in head.median_object_shares),
            "boundary": ", ".join(f"{v:.0%}" for v in head.boundary_shares), "pool": str(len(case.pool)),
        })  # fmt: skip
    return rows


def result_rows(cases: list[Case], scores: list[Scores]) -> list[dict[str, str]]:
    rows = []
    for case, s in zip(cases, scores, strict=True):
        means, default = s.truth.means, _index(case, DEFAULT_LABEL)
        pick = case.advisor_error[:40] or f"{_label(case, case.pick)} ({means[case.pick]:.3f})"
        rows.append({
            "set": case.name, "advisor pick": pick, "default": f"{means[default]:.3f}",
            "truth best": f"{_label(case, s.best)} ({means[s.best]:.3f})",
            "worst": f"{means.min():.3f}", "tie set": ", ".join(_label(case, i) for i in sorted(s.ties)),
            "hit@1": "hit" if s.hit1 else "MISS", "regret": f"{s.regret:.3f}",
            "default regret": f"{regret(means, default):.3f}",
            "advisor CPU s": f"{case.advisor_cpu_s:.0f}", "truth CPU s": f"{s.truth.cpu_s:.0f}",
        })  # fmt: skip
    return rows


def summary_rows(cases: list[Case], scores: list[Scores]) -> list[dict[str, str]]:
    rows = [{
        "policy": "ADVISOR", "hit@1": f"{np.mean([s.hit1 for s in scores]):.2f}",
        "mean regret": f"{np.mean([s.regret for s in scores]):.3f}",
    }]  # fmt: skip
    for name, label in POLICIES.items():
        picks = [_index(case, label) for case in cases]
        rows.append({
            "policy": name, "hit@1": f"{np.mean([p in s.ties for p, s in zip(picks, scores, strict=True)]):.2f}",
            "mean regret": f"{np.mean([regret(s.truth.means, p) for p, s in zip(picks, scores, strict=True)]):.3f}",
        })  # fmt: skip
    return rows


LEGEND = (
    "Values are the metric's mean over 3 seeds x 32 test images. tie set: entries whose paired two-level"
    " bootstrap 95% interval of the difference to the best includes 0. hit@1: the advisor's top pick is in the"
    " tie set. regret: (best - pick) / (best - worst). default: the baseline rule's Dice + CE (nnU-Net)."
    " advisor CPU s: recommend()'s process CPU time (profiling and trials); truth CPU s: every entry's"
    " training on every seed (one thread each)."
)


def report(cases: list[Case], markdown: bool, budget: dict[str, int]) -> str:
    heading = (lambda text: f"\n#### {text}\n") if markdown else (lambda text: f"\n{text}\n{'=' * len(text)}")
    scores = [score_case(case) for case in cases]
    advisor_cpu = sum(c.advisor_cpu_s for c in cases if math.isfinite(c.advisor_cpu_s))
    truth_cpu = sum(s.truth.cpu_s for s in scores)
    parts = [heading("Sets"), render(set_rows(cases), markdown), heading("Results")]
    parts += [render(result_rows(cases, scores), markdown), "", render(summary_rows(cases, scores), markdown)]
    parts += [
        "",
        f"Advisor {advisor_cpu:.0f} CPU s in all, {advisor_cpu / truth_cpu:.1%} of the ground truth's {truth_cpu:.0f}"
        f" CPU s; budget {json.dumps(budget)}, protocol {json.dumps(PROTOCOL)}.",
        "",
        LEGEND,
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated set names")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the ground truth")
    parser.add_argument("--truth-only", action="store_true", help="fill the cache; do not run the advisor")
    parser.add_argument("--out", type=Path, help="also write the report as Markdown to this file")
    parser.add_argument("--epochs", type=int, default=ADVISOR["epochs"], help="the advisor's epoch budget")
    parser.add_argument("--repeats", type=int, default=ADVISOR["repeats"], help="the advisor's repeats")
    args = parser.parse_args(argv)
    budget = {"epochs": args.epochs, "repeats": args.repeats}
    names = args.only.split(",") if args.only else list(BY_NAME)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        parser.error(f"unknown sets {unknown}; known: {', '.join(BY_NAME)}")
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    cases = []
    for number, name in enumerate(names, 1):
        cases.append(Case(name, build_pool(profile_task(name))))
        log(f"{number}/{len(names)} {name}: {len(cases[-1].pool)} pool entries")
        if not args.truth_only:
            run_advisor(cases[-1], budget, log)
    fill_truth(cases, args.jobs, log)
    if args.truth_only:
        log("ground truth cached")
        return 0
    print(report(cases, markdown=False, budget=budget))
    log("done")
    if args.out:
        args.out.write_text("# Segmentation quality\n" + report(cases, markdown=True, budget=budget) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
