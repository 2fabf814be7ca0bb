"""How good are the advisor's picks? ``shared/selection.md``, "Measuring the advisor", on real offline data.

For every dataset of ``bench/datasets.py`` (metric fixed in advance):

1. the advisor runs through its public API alone, ``advisor.recommend(frame, target="target", task=head,
   metric=metric)`` with default settings, on the development rows (train + validation) of split 0; its
   ranking, wall time and trained member-epochs are kept;
2. the ground truth, by code of its own here (nothing from ``advisor.trials``, ``advisor.ranking`` or the
   advisor's internals), trains every pool entry: each rule candidate for the profiled task, a fixed pool of
   generic losses per family, and the advisor's top pick when it is none of those. One MLP per loss (two
   hidden layers of 64 ReLU units; the members of a split are stacked into batched matrix products, which
   computes what separate models would, to float rounding), AdamW (lr 1e-3, weight decay 1e-4), batches of 64
   rows (n_train // 10 when smaller, at least 16), 150 epochs, on 5 fresh stratified 60/20/20 splits. Two
   protocols come from the same run: (a) early stopping on the validation metric with patience 15, restoring
   the best epoch; (b) the best validation epoch of all 150; (c) the last epoch, 150, with no epoch chosen
   (a fixed budget, as many people train). The metric is scikit-learn's on the test rows; post-hoc recipes
   are tuned on the validation rows at the epoch the plain validation metric chose (under (c), the last). Results
   are cached per (dataset, entry, split, protocol settings) under ``bench/truth_cache/``;
3. scores per protocol: the tie set (entries whose paired-bootstrap 95% interval of the difference to the best
   includes 0), hit@1, hit@3 and normalised regret (best - pick) / (best - worst), beside constant policies
   (always the default loss, focal with inverse-frequency alpha, weighted CE, logit-adjusted, Huber, Tweedie
   1.5, and the best fixed loss per family in hindsight), and the advisor's compute beside the exhaustive
   search's.

Run from the repository root (``pip install -e ".[bench]"`` first)::

    python -m bench.quality [--quick] [--only a,b] [--jobs N] [--truth-only] [--determinism] [--out FILE.md]

``--truth-only`` fills the cache without the advisor; a full run then trains only the advisor and any pool
entries new since (a changed rule, the advisor's own top pick). The whole ground truth (38 datasets, rows
capped at 2,000, see ``bench/datasets.py``) took 52 process-minutes, under 30 minutes with ``--jobs 2``. It
reports misses and always exits 0.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split

import advisor
from advisor import Head, LossSpec, TaskDescription
from advisor.profiling import profile_data
from advisor.rules import candidates_from, load_rules
from bench import datasets
from bench.datasets import CLASS_HEADS, Dataset
from bench.scoring import read_truth, regret, render, write_truth

SPLITS = 5
QUICK_SPLITS = 2
QUICK = ("breast_cancer", "wine", "diabetes", "biochemists")
# Everything that decides a ground-truth result; part of every cache key.
PROTOCOL = {
    "version": 2,  # 2: protocol (c) recorded
    "hidden": [64, 64],
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "batch": [64, 16],
    "epochs": 150,
    "patience": 15,
    "tau_grid": [0.0, 2.0, 21],
}
PROTOCOLS = ("a: early stopping (patience 15)", "b: best epoch of 150", "c: last epoch of 150")
CACHE_DIR = Path(__file__).parent / "truth_cache"
BOOTSTRAP_DRAWS = 2_000
HIGHER_IS_BETTER = {
    "balanced_accuracy": True,
    "macro_f1": True,
    "average_precision": True,
    "rmse": False,
    "mae": False,
    "poisson_deviance": False,
}
PREDICTION_FLOOR = 1e-3  # Poisson deviance needs predictions > 0: floor at this share of the training mean
FAMILY = {
    "binary": "classification",
    "multiclass": "classification",
    "regression": "regression",
    "count": "count",
}
POLICIES: dict[str, dict[str, str]] = {
    "always default loss": {
        "binary": "fixed:bce",
        "multiclass": "fixed:ce",
        "regression": "fixed:mse",
        "count": "fixed:poisson",
    },
    "always focal inv-freq alpha": {h: "fixed:focal_inv_alpha" for h in CLASS_HEADS},
    "always weighted CE": {h: "fixed:weighted_ce" for h in CLASS_HEADS},
    "always logit-adjusted": {h: "fixed:logit_adjusted" for h in CLASS_HEADS},
    "always Huber": {"regression": "fixed:huber"},
    "always Tweedie 1.5": {"regression": "fixed:tweedie1.5", "count": "fixed:tweedie1.5"},
}
HINDSIGHT = "best fixed loss (hindsight)"
TARGET_HIT1, TARGET_REGRET_SHARE, TARGET_COMPUTE_SHARE = 0.9, 0.5, 0.2


# ----------------------------------------------------------------------------------------------------------
# Splits and the pool


def split_rows(ds: Dataset, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stratified 60/20/20 train / validation / test split of the row indices, seeded by the split number."""
    strata, rows = ds.strata(), np.arange(len(ds.y))
    development, test = train_test_split(rows, test_size=0.2, random_state=split, stratify=strata)
    train, val = train_test_split(
        development, test_size=0.25, random_state=split, stratify=strata[development]
    )
    return train, val, test


def development_frame(ds: Dataset) -> pd.DataFrame:
    """Split 0's train + validation rows as the user's table (what the advisor and the profile see)."""
    train, val, _ = split_rows(ds, 0)
    return ds.frame(np.concatenate([train, val]))


@dataclass
class Entry:
    """A pool entry: a loss spec (target units) plus a post-hoc kind ('' for none), under one or more labels."""

    labels: list[str]
    spec: LossSpec
    post_hoc: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.spec.to_json(), self.post_hoc


def profile_task(ds: Dataset) -> tuple[TaskDescription, str]:
    """The task profiled from split 0's development rows with the dataset's metric, and a note when the
    advisor's task model refuses that metric for the head (the task then keeps the default metric)."""
    profiled = profile_data(development_frame(ds), target="target", task=ds.head).task
    head = profiled.heads[0]
    codes = [str(c) for c in range(int(ds.y.max()) + 1)] if ds.head in CLASS_HEADS else []
    if codes and [str(c) for c in head.class_labels] != codes:
        raise RuntimeError(f"{ds.name}: profiled classes {head.class_labels} are not the codes 0..K-1")
    try:
        head = Head.model_validate({**head.model_dump(), "metric": ds.metric})
    except ValueError as error:
        return profiled, f"task refuses metric {ds.metric}: {str(error).splitlines()[-1].strip()}"
    return profiled.model_copy(update={"heads": [head]}), ""


def _rounded(values: Iterable[float]) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


def fixed_pool(ds: Dataset, head: Head) -> list[tuple[str, dict[str, Any], str]]:
    """The generic losses of the dataset's family as (label, spec, post-hoc kind); class counts and the robust
    scale come from the profile of split 0's development rows."""
    if ds.head in CLASS_HEADS:
        counts = [int(c) for c in head.class_histogram]
        inverse = _rounded(sum(counts) / (len(counts) * max(c, 1)) for c in counts)
        pool = [
            ("fixed:ce", {"loss": "cross_entropy"}, ""),
            ("fixed:ce_ls0.1", {"loss": "cross_entropy", "params": {"label_smoothing": 0.1}}, ""),
            ("fixed:weighted_ce", {"loss": "cross_entropy", "params": {"weight": inverse}}, ""),
            ("fixed:class_balanced", {"loss": "class_balanced", "params": {"samples_per_class": counts}}, ""),
            ("fixed:focal_g2", {"loss": "focal", "params": {"gamma": 2.0}}, ""),
            ("fixed:focal_inv_alpha", {"loss": "focal", "params": {"gamma": 2.0, "alpha": inverse}}, ""),
            (
                "fixed:logit_adjusted",
                {"loss": "logit_adjusted", "params": {"samples_per_class": counts, "tau": 1.0}},
                "",
            ),
            ("fixed:ce+posthoc_la", {"loss": "cross_entropy"}, "logit_adjustment"),
            ("fixed:ldam", {"loss": "ldam", "params": {"samples_per_class": counts}}, ""),
            ("fixed:poly1", {"loss": "poly1"}, ""),
            ("fixed:gce_q0.7", {"loss": "gce", "params": {"q": 0.7}}, ""),
        ]
        return pool + ([("fixed:bce", {"loss": "bce"}, "")] if ds.head == "binary" else [])
    log_link = [
        ("fixed:poisson", {"loss": "poisson_nll", "params": {"log_input": True}}, ""),
        ("fixed:tweedie1.2", {"loss": "tweedie", "params": {"power": 1.2}}, ""),
        ("fixed:tweedie1.5", {"loss": "tweedie", "params": {"power": 1.5}}, ""),
    ]
    if ds.head == "count":
        return [*log_link, ("fixed:mse", {"loss": "mse"}, ""), ("fixed:l1", {"loss": "l1"}, "")]
    scale = head.target.robust_scale or float(np.std(ds.y))
    pool = [
        ("fixed:mse", {"loss": "mse"}, ""),
        ("fixed:l1", {"loss": "l1"}, ""),
        ("fixed:huber", {"loss": "huber", "params": {"delta": _rounded([1.345 * scale])[0]}}, ""),
        ("fixed:log_cosh", {"loss": "log_cosh"}, ""),
        ("fixed:pinball0.5", {"loss": "quantile", "params": {"quantiles": [0.5]}}, ""),
        ("fixed:gaussian_nll", {"loss": "gaussian_nll"}, ""),
    ]
    return pool + (log_link if ds.y.min() >= 0 else [])


def build_pool(ds: Dataset, task: TaskDescription) -> tuple[list[Entry], list[str]]:
    """Rule candidates plus the fixed pool, one entry per (spec, post-hoc kind); notes on skipped candidates."""
    head, notes = task.heads[0], []
    proposals = [
        (c.rule_id, c.spec, c.post_hoc.kind if c.post_hoc else "")
        for c in candidates_from(load_rules(), task)
        if c.head == head.name
    ]
    proposals += [(label, advisor.normalize_spec(spec), kind) for label, spec, kind in fixed_pool(ds, head)]
    entries: dict[tuple[str, str], Entry] = {}
    for label, spec, kind in proposals:
        if link_of(spec, ds) is None:
            notes.append(f"skipped {label}: no output link for loss {spec.loss}")
            continue
        entry = Entry([label], spec, kind)
        if entry.key in entries:
            entries[entry.key].labels.append(label)
        else:
            entries[entry.key] = entry
    return list(entries.values()), notes


# ----------------------------------------------------------------------------------------------------------
# How a network output feeds each loss, and how predictions are read


SOFTMAX = {"cross_entropy", "focal", "logit_adjusted", "ldam", "poly1", "gce", "sce"}
ONE_LOGIT = {"bce", "binary_focal", "asl"}
POINT = {"mse", "l1", "huber", "smooth_l1", "log_cosh"}
MEAN_LOG_VARIANCE = {"gaussian_nll", "beta_nll"}


@dataclass(frozen=True)
class Link:
    """kind: softmax, log_softmax, sigmoid_columns, one_logit (classes); point, mean_log_variance, quantile,
    log_rate, rate (numbers). width: output columns. median: the quantile column read as the prediction."""

    kind: str
    width: int
    median: int = 0

    @property
    def log_link(self) -> bool:
        return self.kind in ("log_rate", "rate")


def link_of(spec: LossSpec, ds: Dataset) -> Link | None:
    """The output link of a spec on this dataset, None for a loss this bench cannot feed."""
    classes, name, params = int(ds.y.max()) + 1 if ds.head in CLASS_HEADS else 0, spec.loss, spec.params
    if ds.head in CLASS_HEADS:
        if name in SOFTMAX or (name == "class_balanced" and params.get("activation") == "softmax"):
            return Link("softmax", classes)
        if name == "class_balanced":
            return Link("sigmoid_columns", classes)
        if name == "nll":
            return Link("log_softmax", classes)
        if name in ONE_LOGIT and ds.head == "binary":
            return Link("one_logit", 1)
        return None
    if name in POINT:
        return Link("point", 1)
    if name in MEAN_LOG_VARIANCE:
        return Link("mean_log_variance", 2)
    if name == "quantile":
        levels = params["quantiles"]
        return Link("quantile", len(levels), int(np.argmin([abs(q - 0.5) for q in levels])))
    if name == "tweedie" or (name == "poisson_nll" and params.get("log_input", True)):
        return Link("log_rate", 1)
    if name == "poisson_nll":
        return Link("rate", 1)
    return None


def loss_input(link: Link, out: torch.Tensor) -> torch.Tensor:
    """The loss's input from the member's output columns ``out`` (rows, width)."""
    if link.kind == "log_softmax":
        return F.log_softmax(out, dim=1)
    if link.kind in ("one_logit", "point", "log_rate"):
        return out[:, 0]
    if link.kind == "rate":
        return F.softplus(out[:, 0])
    return out


def predict(link: Link, out: torch.Tensor, shift: float, scale: float) -> np.ndarray:
    """Class probabilities (rows, classes), or predictions in target units (rows,)."""
    if link.kind in ("softmax", "log_softmax"):
        return torch.softmax(out, dim=1).numpy()
    if link.kind == "sigmoid_columns":
        columns = torch.sigmoid(out)
        return (columns / columns.sum(1, keepdim=True).clamp_min(1e-12)).numpy()
    if link.kind == "one_logit":
        positive = torch.sigmoid(out[:, 0])
        return torch.stack([1 - positive, positive], dim=1).numpy()
    if link.kind == "log_rate":
        return (torch.exp(out[:, 0].clamp(max=30.0)) * scale).numpy()
    if link.kind == "rate":
        return (F.softplus(out[:, 0]) * scale).numpy()
    column = link.median if link.kind == "quantile" else 0
    return (out[:, column] * scale + shift).numpy()


def train_spec(spec: LossSpec, link: Link, scale: float) -> LossSpec:
    """The spec to train with: target-unit parameters divided by the target scale (standardized targets)."""
    if link.log_link or scale == 1.0:
        return spec
    fields = advisor.get_loss_info(spec.loss).params_model.model_fields
    params = dict(spec.params)
    for name, info in fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("units") == "target" and params.get(name) is not None:
            params[name] = params[name] / scale
    return advisor.normalize_spec({"loss": spec.loss, "params": params})


# ----------------------------------------------------------------------------------------------------------
# Metrics and post-hoc recipes (validation rows only)


def score(metric: str, predictions: np.ndarray, y: np.ndarray, floor: float) -> float:
    """scikit-learn's metric; NaN for non-finite predictions."""
    if not np.isfinite(predictions).all():
        return math.nan
    if metric == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y, predictions.argmax(1)))
    if metric == "macro_f1":
        labels = list(range(predictions.shape[1]))
        return float(skm.f1_score(y, predictions.argmax(1), labels=labels, average="macro", zero_division=0))
    if metric == "average_precision":
        return float(skm.average_precision_score(y, predictions[:, 1]))
    if metric == "rmse":
        return float(skm.root_mean_squared_error(y, predictions))
    if metric == "mae":
        return float(skm.mean_absolute_error(y, predictions))
    if metric == "poisson_deviance":
        return float(skm.mean_poisson_deviance(y, np.maximum(predictions, floor)))
    raise ValueError(f"unknown metric {metric!r}")


def quick_score(metric: str, predictions: np.ndarray, y: np.ndarray, floor: float) -> float:
    """The same metric in plain numpy, for choosing epochs (scikit-learn's takes milliseconds a call); the
    values recorded are recomputed by :func:`score`."""
    if not np.isfinite(predictions).all():
        return math.nan
    if metric in ("balanced_accuracy", "macro_f1"):
        classes, predicted = predictions.shape[1], predictions.argmax(1)
        hits = np.bincount(y[predicted == y], minlength=classes)
        support, chosen = np.bincount(y, minlength=classes), np.bincount(predicted, minlength=classes)
        if metric == "balanced_accuracy":
            return float(np.mean(hits[support > 0] / support[support > 0]))
        total = support + chosen
        return float(np.mean(np.where(total > 0, 2 * hits / np.maximum(total, 1), 0.0)))
    if metric == "average_precision":
        order = np.argsort(-predictions[:, 1], kind="mergesort")
        ranked, hits = predictions[order, 1], np.cumsum(y[order])
        last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # the end of each run of equal scores
        precision, recall = hits[last] / (last + 1), hits[last] / hits[-1]
        return float(np.sum(np.diff(recall, prepend=0.0) * precision))
    if metric == "poisson_deviance":
        mu = np.maximum(predictions, floor)
        return float(np.mean(2 * (np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0.0) - y + mu)))
    errors = predictions - y
    return float(np.sqrt(np.mean(errors**2)) if metric == "rmse" else np.mean(np.abs(errors)))


def _one_hot(classes: np.ndarray, count: int) -> np.ndarray:
    return np.eye(count)[classes]


def post_hoc_values(
    kind: str,
    metric: str,
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    priors: np.ndarray,
) -> tuple[float, float]:
    """(validation, test) metric of a post-hoc recipe tuned on the validation rows.

    logit_adjustment: argmax(log p - tau log prior), tau on the grid over [0, 2]; threshold (two classes):
    the cut on p(class 1) among the validation quantiles. Temperature, and any recipe on a ranking metric
    (average precision), leave the metrics here unchanged.
    """
    (p_val, y_val), (p_test, y_test) = val, test
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    if metric == "average_precision" or kind not in ("logit_adjustment", "threshold"):
        return score(metric, p_val, y_val, 0.0), score(metric, p_test, y_test, 0.0)
    if not (np.isfinite(p_val).all() and np.isfinite(p_test).all()):
        return math.nan, math.nan
    if kind == "logit_adjustment":
        low, high, steps = PROTOCOL["tau_grid"]
        log_prior = np.log(priors)

        def adjust(p: np.ndarray, tau: float) -> np.ndarray:
            return np.log(np.maximum(p, 1e-12)) - tau * log_prior

        settings = np.linspace(low, high, steps)
    elif p_val.shape[1] == 2:

        def adjust(p: np.ndarray, cut: float) -> np.ndarray:
            return _one_hot((p[:, 1] >= cut).astype(int), 2)

        settings = np.unique(np.quantile(p_val[:, 1], np.linspace(0.01, 0.99, 99)))
    else:
        return score(metric, p_val, y_val, 0.0), score(metric, p_test, y_test, 0.0)
    values = [sign * score(metric, adjust(p_val, s), y_val, 0.0) for s in settings]
    best = settings[int(np.argmax(values))]
    return sign * max(values), score(metric, adjust(p_test, best), y_test, 0.0)


# ----------------------------------------------------------------------------------------------------------
# Ground-truth training: one MLP per loss, the members of a split stacked


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def batch_size(train_rows: int) -> int:
    large, small = PROTOCOL["batch"]
    return large if train_rows // 10 >= large else max(small, train_rows // 10)


def _init(members: list[Member], features: int, data: SplitData) -> list[torch.Tensor]:
    """Stacked weights and biases, each member from its own generator (nn.Linear's uniform init), so a member's
    start does not depend on which members train beside it."""
    sizes, width = [features, *PROTOCOL["hidden"]], max(m.link.width for m in members)
    layers: list[list[torch.Tensor]] = [[] for _ in range(2 * len(sizes))]
    for member in members:
        generator = torch.Generator().manual_seed(_seed(data.ds.name, data.split, member.spec_json))
        shapes = [*itertools.pairwise(sizes), (sizes[-1], member.link.width)]
        for index, (fan_in, fan_out) in enumerate(shapes):
            bound = 1 / math.sqrt(fan_in)
            for offset, shape in ((0, (fan_in, fan_out)), (1, (1, fan_out))):
                values = (torch.rand(shape, generator=generator) * 2 - 1) * bound
                if index == len(shapes) - 1:
                    values = F.pad(values, (0, width - fan_out))
                layers[2 * index + offset].append(values)
    return [torch.stack(tensors).requires_grad_() for tensors in layers]


def _forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """(members, rows, width) outputs of the stacked MLPs on the same rows."""
    hidden = x.unsqueeze(0).expand(params[0].shape[0], -1, -1)
    for index in range(0, len(params) - 2, 2):
        hidden = torch.relu(torch.baddbmm(params[index + 1], hidden, params[index]))
    return torch.baddbmm(params[-1], hidden, params[-2])


@dataclass
class _Best:
    """The epoch one member keeps under one protocol, with its outputs: the best validation epoch, or with
    ``last`` the latest (protocol (c))."""

    value: float = -math.inf
    epoch: int = -1
    val: torch.Tensor | None = None
    test: torch.Tensor | None = None
    stopped_at: int | None = None  # protocol (a): the epoch count when patience ran out
    last: bool = False

    def update(
        self, value: float, epoch: int, val: torch.Tensor, test: torch.Tensor, patience: int | None
    ) -> None:
        """Keep the epoch if it is the best so far (or, with ``last``, always); with a patience, stop once it
        has run out."""
        if self.stopped_at is not None:
            return
        if self.last or value > self.value:
            self.value, self.epoch, self.val, self.test = value, epoch, val, test
        elif patience is not None and epoch - self.epoch >= patience:
            self.stopped_at = epoch + 1


@dataclass(frozen=True)
class SplitData:
    """One split ready to train on: features standardized on the training rows, the target's shift and scale
    (regression and counts; log-link losses see y / scale), the Poisson-deviance prediction floor."""

    ds: Dataset
    split: int
    rows: tuple[np.ndarray, np.ndarray, np.ndarray]  # train, validation, test
    x: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    classes: int  # 0 for numeric targets
    shift: float = 0.0
    scale: float = 1.0
    floor: float = 0.0

    @classmethod
    def make(cls, ds: Dataset, split: int) -> SplitData:
        rows = split_rows(ds, split)
        train = rows[0]
        mean, std = ds.x[train].mean(0), ds.x[train].std(0)
        x = (ds.x - mean) / np.where(std > 0, std, 1.0)
        tensors = tuple(torch.as_tensor(x[r], dtype=torch.float32) for r in rows)
        if ds.head in CLASS_HEADS:
            return cls(ds, split, rows, tensors, int(ds.y.max()) + 1)
        y = ds.y[train]
        floor = PREDICTION_FLOOR * max(float(y.mean()), 1e-9)
        return cls(ds, split, rows, tensors, 0, float(y.mean()), float(y.std() or 1.0), floor)

    def targets(self, link: Link, part: int) -> torch.Tensor:
        y = self.ds.y[self.rows[part]]
        if self.classes:
            return torch.as_tensor(y, dtype=torch.float32 if link.kind == "one_logit" else torch.long)
        y = y / self.scale if link.log_link else (y - self.shift) / self.scale
        return torch.as_tensor(y, dtype=torch.float32)

    def predict(self, link: Link, out: torch.Tensor) -> np.ndarray:
        return predict(link, out, self.shift, self.scale)

    def score(self, part: int, predictions: np.ndarray, quick: bool = False) -> float:
        function = quick_score if quick else score
        return function(self.ds.metric, predictions, self.ds.y[self.rows[part]], self.floor)


@dataclass
class Member:
    """One model of the stack: its spec (target units), output link and training loss."""

    spec_json: str
    link: Link
    loss: torch.nn.Module
    best: tuple[_Best, _Best, _Best] = field(default_factory=lambda: (_Best(), _Best(), _Best(last=True)))
    diverged_at: int | None = None


def fit(data: SplitData, members: list[Member]) -> None:
    """Train the stacked MLPs for the protocol's epochs; each member's best epochs land in ``member.best``."""
    params = _init(members, data.x[0].shape[1], data)
    optimizer = torch.optim.AdamW(
        params, lr=PROTOCOL["lr"], weight_decay=PROTOCOL["weight_decay"], foreach=True
    )
    x_train, x_val, x_test = data.x
    y_train = [data.targets(m.link, 0) for m in members]
    sign = 1.0 if HIGHER_IS_BETTER[data.ds.metric] else -1.0
    size, patience = batch_size(len(x_train)), PROTOCOL["patience"]
    order = torch.Generator().manual_seed(_seed(data.ds.name, data.split, "batches"))
    for epoch in range(PROTOCOL["epochs"]):
        permutation = torch.randperm(len(x_train), generator=order)
        for start in range(0, len(x_train), size):
            rows = permutation[start : start + size]
            out = _forward(params, x_train[rows]).unbind(0)
            total = out[0].new_zeros(())
            for m, member in enumerate(members):
                if member.diverged_at is None:
                    value = member.loss(
                        loss_input(member.link, out[m][:, : member.link.width]), y_train[m][rows]
                    )
                    if torch.isfinite(value):
                        total = total + value
                    else:
                        member.diverged_at = epoch
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
        with torch.no_grad():
            out_val, out_test = _forward(params, x_val), _forward(params, x_test)
        for m, member in enumerate(members):
            if member.diverged_at is None:
                val, test = out_val[m, :, : member.link.width], out_test[m, :, : member.link.width]
                value = sign * data.score(1, data.predict(member.link, val), quick=True)
                member.best[0].update(value, epoch, val, test, patience)
                member.best[1].update(value, epoch, val, test, None)
                member.best[2].update(value, epoch, val, test, None)


def _values(data: SplitData, member: Member, record: _Best, kind: str) -> tuple[float, float]:
    """(validation, test) metric of one member's best epoch, through its post-hoc recipe if any."""
    if record.val is None:
        return math.nan, math.nan
    p_val, p_test = data.predict(member.link, record.val), data.predict(member.link, record.test)
    if not kind:
        return data.score(1, p_val), data.score(2, p_test)
    train, val, test = data.rows
    priors = np.bincount(data.ds.y[train], minlength=data.classes) / len(train)
    return post_hoc_values(kind, data.ds.metric, (p_val, data.ds.y[val]), (p_test, data.ds.y[test]), priors)


def train_split(
    name: str, split: int, specs: list[tuple[str, list[str]]]
) -> tuple[list[dict[str, Any]], float]:
    """Train one model per spec JSON (with its post-hoc kinds) on one split: a record per (spec, post-hoc kind)
    with (validation, test) values and trained epochs under protocols (a), (b) and (c), and the wall time."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    data = SplitData.make(datasets.load(name), split)
    members = []
    for spec_json, _ in specs:
        spec = LossSpec.model_validate_json(spec_json)
        link = link_of(spec, data.ds)
        members.append(Member(spec_json, link, advisor.build_loss(train_spec(spec, link, data.scale))))
    fit(data, members)
    seconds = time.perf_counter() - started
    results = []
    for member, (_, kinds) in zip(members, specs, strict=True):
        trained = PROTOCOL["epochs"] if member.diverged_at is None else member.diverged_at + 1
        epochs = [min(member.best[0].stopped_at or trained, trained), trained, trained]
        for kind in kinds:
            values = [_values(data, member, record, kind) for record in member.best]
            results.append({
                "spec": member.spec_json, "post_hoc": kind, "val": _rounded(v for v, _ in values),
                "test": _rounded(t for _, t in values), "epochs": epochs, "s": round(seconds / len(members), 3),
            })  # fmt: skip
    return results, seconds


# ----------------------------------------------------------------------------------------------------------
# The cache and the ground-truth runs


def cache_key(ds: Dataset, entry: Entry, split: int) -> str:
    """Hash of what decides one result: dataset (name, rows and a digest of its values), the entry's spec and
    post-hoc kind, the split and the protocol settings."""
    data = hashlib.sha1(ds.x.tobytes() + ds.y.tobytes()).hexdigest()[:12]
    payload = json.dumps([ds.name, len(ds.y), data, entry.spec.to_json(), entry.post_hoc, split, PROTOCOL])
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


@dataclass
class Case:
    """One dataset with its pool (and, once run, the advisor's answer)."""

    ds: Dataset
    pool: list[Entry]
    notes: list[str] = field(default_factory=list)
    ranking: list[int] = field(default_factory=list)  # pool indices (-1: not in the pool), rank 1 first
    advisor_s: float = math.nan
    advisor_member_epochs: float = math.nan
    advisor_error: str = ""


def prepare(name: str) -> Case:
    ds = datasets.load(name)
    task, note = profile_task(ds)
    pool, notes = build_pool(ds, task)
    return Case(ds, pool, [n for n in [note, *notes] if n])


def fill_truth(cases: list[Case], splits: int, jobs: int, log: Callable[[str], None]) -> None:
    """Train every (dataset, split) that has pool entries missing from the cache; the parent writes the cache."""
    work = []
    for case in cases:
        cached = read_truth(CACHE_DIR, case.ds.name)
        for split in range(splits):
            missing: dict[str, list[str]] = {}
            for entry in case.pool:
                if cache_key(case.ds, entry, split) not in cached:
                    missing.setdefault(entry.spec.to_json(), []).append(entry.post_hoc)
            if missing:
                work.append((case, split, list(missing.items())))
    log(f"ground truth: {len(work)} (dataset, split) runs to train, {jobs} process(es)")
    by_name = {case.ds.name: case for case in cases}

    def store(name: str, split: int, results: list[dict[str, Any]], seconds: float) -> None:
        case, records = by_name[name], read_truth(CACHE_DIR, name)
        labels = {entry.key: entry.labels[0] for entry in case.pool}
        for result in results:
            entry = Entry([], LossSpec.model_validate_json(result["spec"]), result["post_hoc"])
            record = {k: v for k, v in result.items() if k != "spec"}
            records[cache_key(case.ds, entry, split)] = {"label": labels[entry.key], "split": split, **record}
        write_truth(CACHE_DIR, name, records)
        log(f"  {name} split {split}: {len(results)} entries in {seconds:.1f} s")

    if jobs <= 1:
        threads = torch.get_num_threads()
        for case, split, specs in work:
            store(case.ds.name, split, *train_split(case.ds.name, split, specs))
        torch.set_num_threads(threads)
        return
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(train_split, c.ds.name, s, specs): (c.ds.name, s) for c, s, specs in work}
        for future in as_completed(futures):
            store(*futures[future], *future.result())


@dataclass(frozen=True)
class Truth:
    """Ground truth of one dataset under one protocol: test values (entries, splits), larger is better."""

    values: np.ndarray
    seconds: float  # the exhaustive search's training time (each spec once per split)
    member_epochs: float


def load_truth(case: Case, splits: int, protocol: int) -> Truth:
    """Test values of every pool entry from the cache; protocol (a)'s time is pro rata of its epochs."""
    records = read_truth(CACHE_DIR, case.ds.name)
    sign = 1.0 if HIGHER_IS_BETTER[case.ds.metric] else -1.0
    values = np.full((len(case.pool), splits), np.nan)
    seconds = member_epochs = 0.0
    for split in range(splits):
        trained = set()
        for e, entry in enumerate(case.pool):
            record = records[cache_key(case.ds, entry, split)]
            values[e, split] = sign * record["test"][protocol]
            if entry.spec.to_json() not in trained:
                trained.add(entry.spec.to_json())
                epochs = record["epochs"]
                seconds += record["s"] * epochs[protocol] / epochs[1]
                member_epochs += epochs[protocol]
    return Truth(values, seconds, member_epochs)


# ----------------------------------------------------------------------------------------------------------
# The advisor, through its public API


def _ranking_keys(result: Any) -> list[tuple[str, str]]:
    return [(c.spec.to_json(), c.post_hoc.kind if c.post_hoc else "") for c in result.heads[0].candidates]


def call_advisor(ds: Dataset) -> tuple[Any, float]:
    """``advisor.recommend`` with default settings on split 0's development rows, and its wall time."""
    started = time.perf_counter()
    result = advisor.recommend(
        development_frame(ds), target="target", task=ds.head, metric=ds.metric, cache=False
    )  # measured, never a cached answer
    return result, time.perf_counter() - started


def run_advisor(case: Case, log: Callable[[str], None]) -> None:
    """The advisor's ranking as pool indices; its top pick joins the pool when it is none of the entries."""
    try:
        result, case.advisor_s = call_advisor(case.ds)
    except Exception as error:  # the bench reports any failure of the advisor as a miss
        case.advisor_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        log(f"  advisor failed: {case.advisor_error}")
        return
    keys = _ranking_keys(result)
    index = {entry.key: i for i, entry in enumerate(case.pool)}
    if keys and keys[0] not in index:
        spec, kind = keys[0]
        case.pool.append(Entry(["advisor:top"], LossSpec.model_validate_json(spec), kind))
        index[keys[0]] = len(case.pool) - 1
    case.ranking = [index.get(key, -1) for key in keys]
    member_epochs = getattr(result.heads[0], "member_epochs", None)
    case.advisor_member_epochs = float(member_epochs) if member_epochs is not None else math.nan
    top = case.pool[case.ranking[0]] if case.ranking else None
    log(f"  advisor: {case.advisor_s:.1f} s, {len(keys)} candidates, rank 1: {describe(top) if top else '-'}")


def describe(entry: Entry) -> str:
    """Label, loss and its non-default parameters, post-hoc kind."""
    fields = advisor.get_loss_info(entry.spec.loss).params_model.model_fields
    changed = {k: v for k, v in entry.spec.params.items() if k in fields and fields[k].default != v}
    text = f"{entry.labels[0]} = {entry.spec.loss}" + (f" {changed}" if changed else "")
    return text + (f" + {entry.post_hoc}" if entry.post_hoc else "")


def determinism(names: list[str], log: Callable[[str], None]) -> list[str]:
    """Run the advisor twice per dataset, the second time beside a CPU-burning process; identical rankings?"""
    lines = []
    for name in names:
        ds = datasets.load(name)
        first, first_s = call_advisor(ds)
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            second, second_s = call_advisor(ds)
        finally:
            burner.kill()
            burner.wait()
        same = _ranking_keys(first) == _ranking_keys(second)
        lines.append(
            f"{name}: rankings {'IDENTICAL' if same else 'DIFFER'} ({first_s:.1f} s alone, {second_s:.1f} s "
            f"beside a busy process)"
        )
        log("  " + lines[-1])
    return lines


# ----------------------------------------------------------------------------------------------------------
# Scores


def finite_means(values: np.ndarray) -> np.ndarray:
    """Means over splits; NaN for an entry with any non-finite split (it never produced a usable model)."""
    return np.where(np.isfinite(values).all(1), np.nan_to_num(values).mean(1), np.nan)


def tie_set(values: np.ndarray, rng: np.random.Generator) -> set[int]:
    """Entries whose paired-bootstrap 95% interval of the difference to the best entry includes 0."""
    means = finite_means(values)
    best = int(np.nanargmax(means))
    tied = {best}
    draws = rng.integers(0, values.shape[1], (BOOTSTRAP_DRAWS, values.shape[1]))
    for e in np.flatnonzero(np.isfinite(means)):
        differences = (values[best] - values[e])[draws].mean(1)
        low, high = np.quantile(differences, [0.025, 0.975])
        if low <= 0 <= high:
            tied.add(int(e))
    return tied


@dataclass(frozen=True)
class Scores:
    """One dataset under one protocol."""

    best: int
    ties: frozenset[int]
    pick: int
    hit1: float
    hit3: float
    regret: float
    truth: Truth


def score_case(case: Case, truth: Truth) -> Scores:
    rng = np.random.default_rng(_seed(case.ds.name, "bootstrap"))
    means, ties = finite_means(truth.values), tie_set(truth.values, rng)
    pick = case.ranking[0] if case.ranking else -1
    return Scores(
        best=int(np.nanargmax(means)), ties=frozenset(ties), pick=pick, hit1=float(pick in ties),
        hit3=float(any(i in ties for i in case.ranking[:3])), regret=regret(means, pick), truth=truth,
    )  # fmt: skip


def _index(case: Case, label: str | None) -> int | None:
    return next((i for i, e in enumerate(case.pool) if label in e.labels), None) if label else None


def policy_scores(cases: list[Case], scores: list[Scores]) -> dict[str, tuple[int, float, float]]:
    """(datasets it applies to, hit@1, mean regret) of each constant policy and of the best fixed loss per
    family in hindsight (the fixed:* label, present on every dataset of the family, of least mean regret)."""
    table = {}

    def summary(picks: list[tuple[Scores, int | None]]) -> tuple[int, float, float]:
        if not picks:
            return 0, math.nan, math.nan
        hits = [p in s.ties for s, p in picks]
        regrets = [regret(finite_means(s.truth.values), p) for s, p in picks]
        return len(picks), float(np.mean(hits)), float(np.mean(regrets))

    pairs = list(zip(cases, scores, strict=True))
    for name, labels in POLICIES.items():
        picks = [(s, _index(c, labels.get(c.ds.head))) for c, s in pairs]
        table[name] = summary([(s, i) for s, i in picks if i is not None])
    hindsight: list[tuple[Scores, int | None]] = []
    for family in sorted({FAMILY[c.ds.head] for c in cases}):
        members = [(c, s) for c, s in pairs if FAMILY[c.ds.head] == family]
        shared = set.intersection(
            *({label for e in c.pool for label in e.labels if label.startswith("fixed:")} for c, _ in members)
        )

        def picks_of(
            label: str, members: list[tuple[Case, Scores]] = members
        ) -> list[tuple[Scores, int | None]]:
            return [(s, _index(c, label)) for c, s in members]

        chosen = min(sorted(shared), key=lambda label: summary(picks_of(label))[2])
        hindsight += picks_of(chosen)
        table[f"{HINDSIGHT} {family}: {chosen}"] = summary(picks_of(chosen))
    table[HINDSIGHT] = summary(hindsight)
    return table


# ----------------------------------------------------------------------------------------------------------
# Report


def _number(value: float, digits: int = 3) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _label(case: Case, index: int) -> str:
    return case.pool[index].labels[0] if index >= 0 else "(none)"


def dataset_rows(cases: list[Case]) -> list[dict[str, str]]:
    return [
        {
            "dataset": c.ds.name, "source": c.ds.spec.source, "rows": str(len(c.ds.y)),
            "features": str(c.ds.x.shape[1]), "head": c.ds.head, "metric": c.ds.metric, "traits": c.ds.traits(),
            "pool": str(len(c.pool)), "notes": "; ".join(c.notes),
        }
        for c in cases
    ]  # fmt: skip


def result_rows(cases: list[Case], scores: list[Scores]) -> list[dict[str, str]]:
    rows = []
    for c, s in zip(cases, scores, strict=True):
        ratio = c.advisor_s / s.truth.seconds if s.truth.seconds else math.nan
        epochs = c.advisor_member_epochs / s.truth.member_epochs if s.truth.member_epochs else math.nan
        rows.append({
            "dataset": c.ds.name, "advisor pick": c.advisor_error[:40] or _label(c, s.pick),
            "truth best": _label(c, s.best), "ties": f"{len(s.ties)}/{len(c.pool)}",
            "hit@1": "hit" if s.hit1 else "MISS", "hit@3": "hit" if s.hit3 else "MISS",
            "regret": _number(s.regret), "advisor s": _number(c.advisor_s, 1),
            "truth s": _number(s.truth.seconds, 1), "s ratio": _number(ratio), "epochs ratio": _number(epochs),
        })  # fmt: skip
    return rows


def summary_rows(cases: list[Case], scores: list[Scores]) -> list[dict[str, str]]:
    rows = [{
        "policy": "ADVISOR", "datasets": str(len(scores)),
        "hit@1": _number(np.mean([s.hit1 for s in scores]), 2),
        "hit@3": _number(np.mean([s.hit3 for s in scores]), 2),
        "mean regret": _number(np.mean([s.regret for s in scores])),
    }]  # fmt: skip
    for name, (count, hit1, mean_regret) in policy_scores(cases, scores).items():
        rows.append({"policy": name, "datasets": str(count), "hit@1": _number(hit1, 2),
                     "mean regret": _number(mean_regret)})  # fmt: skip
    return rows


def _total(values: Iterable[float]) -> float:
    """Sum of the finite values (runs where the advisor failed or did not say are left out); NaN if none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(sum(finite)) if finite else math.nan


def targets(cases: list[Case], scores: list[Scores]) -> list[str]:
    """PASS/MISS of the three targets under one protocol."""
    hit1 = float(np.mean([s.hit1 for s in scores]))
    mean_regret = float(np.mean([s.regret for s in scores]))
    fixed = policy_scores(cases, scores)[HINDSIGHT][2]
    advisor_s, truth_s = _total(c.advisor_s for c in cases), sum(s.truth.seconds for s in scores)
    share = advisor_s / truth_s if truth_s else math.nan
    epochs = _total(c.advisor_member_epochs for c in cases) / sum(s.truth.member_epochs for s in scores)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    return [
        f"{verdict(hit1 >= TARGET_HIT1)} hit@1 {hit1:.2f} (target >= {TARGET_HIT1})",
        f"{verdict(mean_regret <= TARGET_REGRET_SHARE * fixed)} mean regret {mean_regret:.3f} (target <= "
        f"{TARGET_REGRET_SHARE} x best fixed loss in hindsight {fixed:.3f} = {TARGET_REGRET_SHARE * fixed:.3f})",
        f"{verdict(share <= TARGET_COMPUTE_SHARE)} advisor compute {advisor_s:.0f} s = {share:.1%} of the "
        f"exhaustive search's {truth_s:.0f} s (target <= {TARGET_COMPUTE_SHARE:.0%}); member-epochs "
        f"{_number(epochs)} of the exhaustive search's",
    ]


LEGEND = (
    "ties: entries whose paired-bootstrap 95% interval of the difference to the best (over the splits) includes 0."
    " hit@1 / hit@3: the advisor's first / a top-3 pick is in the tie set. regret: (best - pick) / (best - worst)"
    " of the split means; 1 for a missing pick. advisor s: recommend() wall time on split 0's development rows;"
    " truth s: the exhaustive search's training time (1 thread; protocol (a) pro rata of its epochs); epochs"
    " ratio: the advisor's trained member-epochs over the exhaustive search's."
)


def report(cases: list[Case], splits: int, markdown: bool, extra: list[str]) -> str:
    """Datasets, then per protocol the per-dataset results, the policies and the targets."""
    heading = (lambda text: f"\n## {text}\n") if markdown else (lambda text: f"\n{text}\n{'=' * len(text)}")
    parts = [heading("Datasets"), render(dataset_rows(cases), markdown)]
    for protocol, title in enumerate(PROTOCOLS):
        scores = [score_case(c, load_truth(c, splits, protocol)) for c in cases]
        parts += [heading(f"Protocol {title}"), render(result_rows(cases, scores), markdown), ""]
        parts += [render(summary_rows(cases, scores), markdown), ""]
        parts += [("- " if markdown else "") + line for line in targets(cases, scores)]
    parts += [heading("Notes"), LEGEND, *extra]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK)} datasets, {QUICK_SPLITS} splits")
    parser.add_argument("--only", help="comma-separated dataset names")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the ground truth")
    parser.add_argument("--truth-only", action="store_true", help="fill the cache; do not run the advisor")
    parser.add_argument("--determinism", action="store_true", help="advisor twice on 3 datasets, one busy")
    parser.add_argument("--out", type=Path, help="also write the report as Markdown to this file")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(QUICK if args.quick else datasets.names())
    unknown = sorted(set(names) - set(datasets.names()))
    if unknown:
        parser.error(f"unknown datasets {unknown}; known: {', '.join(datasets.names())}")
    splits = QUICK_SPLITS if args.quick else SPLITS
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    if args.determinism:
        lines = determinism(names[:3], log)
        print("\n".join(["", "Determinism", *lines]))
        if args.out:
            args.out.write_text("# Advisor determinism\n\n" + "\n".join(f"- {line}" for line in lines) + "\n")
        return 0
    cases = []
    for number, name in enumerate(names, 1):
        cases.append(prepare(name))
        log(f"{number}/{len(names)} {name}: {len(cases[-1].ds.y)} rows, {len(cases[-1].pool)} pool entries")
        if not args.truth_only:
            run_advisor(cases[-1], log)
    fill_truth(cases, splits, args.jobs, log)
    if args.truth_only:
        log("ground truth cached")
        return 0
    extra = [f"{splits} splits per dataset; protocol settings {json.dumps(PROTOCOL)}."]
    print(report(cases, splits, markdown=False, extra=extra))
    log("done")
    if args.out:
        args.out.write_text("# Advisor quality\n" + report(cases, splits, markdown=True, extra=extra) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
