"""How good are the advisor's picks? The protocol of ``shared/selection.md``, "Measuring the advisor".

For each offline dataset (scikit-learn's bundled sets and generated data, metric fixed in advance):

1. the advisor profiles the training rows of split 0, is told what a user would state (label noise, metric)
   and runs ``recommend()`` with default settings on those rows; its ranking and wall time are kept;
2. the ground truth trains every pool entry (every rule candidate for the task plus a fixed pool of generic
   losses per family) to convergence: more epochs, early stopping on validation, a learning-rate grid chosen
   per entry on validation, 5 seeds (10 when n < 2000), a new stratified 60/20/20 split per seed; the metric
   is read on the test rows; post-hoc recipes are tuned on validation;
3. the advisor is scored against it: hit@1 / hit@3 against the paired-bootstrap tie set, normalised regret,
   gains over the default loss and over CE + post-hoc logit adjustment, Kendall tau, and time.

Run from the repository root: ``python -m bench.quality [--quick] [--out FILE.md]``. It reports misses and
always exits 0.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau
from sklearn import datasets as skd
from sklearn.model_selection import train_test_split

from advisor import core
from advisor.heads import HIGHER_IS_BETTER
from advisor.losses import build_loss, get_loss_info, normalize_spec
from advisor.profiling import profile_data
from advisor.rules import PostHoc, candidates_from, load_rules
from advisor.spec import LossSpec
from advisor.task import Head, LabelNoise, TaskDescription
from advisor.trials import posthoc
from advisor.trials.adapters import adapter_for, seed_pooling
from advisor.trials.data import TrialData
from advisor.trials.trainer import BatchedTrainer, Member, TrainConfig, TrialRun

SMALL_DATA_ROWS = 2_000  # below this the protocol asks for 10 seeds, and the cost verdict is checked
BOOTSTRAP_DRAWS = 2_000
DEFAULT_LABEL = {
    "binary": "fixed:bce",
    "multiclass": "fixed:ce",
    "regression": "fixed:mse",
    "count": "fixed:poisson",
}
FAMILY = {
    "binary": "classification",
    "multiclass": "classification",
    "regression": "regression",
    "count": "count",
}
QUICK_DATASETS = ("breast_cancer", "outlier_regression", "poisson_counts")


@dataclass(frozen=True)
class Protocol:
    """How hard the ground truth trains."""

    seeds_small: int = 10
    seeds_large: int = 5
    epochs: int = 80
    learning_rates: tuple[float, ...] = (1e-3, 3e-3)

    def seeds(self, rows: int) -> int:
        return self.seeds_small if rows < SMALL_DATA_ROWS else self.seeds_large


QUICK = Protocol(seeds_small=2, seeds_large=2, epochs=15, learning_rates=(3e-3,))


@dataclass(frozen=True)
class Dataset:
    """Features, clean targets and the targets a user observes (noisy where noise was injected)."""

    name: str
    head_type: str
    metric: str
    x: np.ndarray
    y: np.ndarray
    y_observed: np.ndarray
    noise: LabelNoise | None = None


@dataclass
class Entry:
    """One ground-truth pool entry: a loss spec plus an optional post-hoc recipe, under one or more labels."""

    labels: list[str]
    spec: LossSpec
    post_hoc: PostHoc | None

    @property
    def key(self) -> tuple[str, str]:
        return entry_key(self.spec, self.post_hoc)


@dataclass(frozen=True)
class Scores:
    """The protocol's scores on one dataset; gains: the pick's mean minus the baseline's (+ = pick better)."""

    pick: int  # pool index of the advisor's rank 1 (-1: not in the pool)
    best: int
    ties: frozenset[int]
    hit1: float
    hit3: float
    regret: float
    gain_default: float
    gain_la: float
    tau: float
    tau_ceiling: float


@dataclass
class Outcome:
    """Everything measured on one dataset."""

    dataset: Dataset
    pool: list[Entry]
    test_values: np.ndarray  # (entries, seeds), oriented so that larger is better
    truth_s: float
    fits: int
    advisor_ranking: list[int]  # pool indices, the advisor's rank 1 first
    advisor_s: float
    scores: Scores | None = None


def entry_key(spec: LossSpec, post_hoc: PostHoc | None) -> tuple[str, str]:
    return spec.to_json(), post_hoc.kind if post_hoc else ""


# ----------------------------------------------------------------------------------------------------------
# Datasets


def _with_symmetric_noise(y: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Each label flips with probability ``rate`` to one of the other classes, uniformly."""
    rng = np.random.default_rng(seed)
    classes = int(y.max()) + 1
    flipped = rng.random(len(y)) < rate
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, classes, flipped.sum())) % classes
    return noisy


def _long_tail_digits(
    ratio: float = 10.0, head_count: int = 180, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Digits with class c kept at head_count * ratio^(-c/9) rows."""
    x, y = skd.load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(10):
        rows = rng.permutation(np.flatnonzero(y == c))
        keep.extend(rows[: round(head_count * ratio ** (-c / 9))])
    keep = np.sort(keep)
    return x[keep], y[keep]


def _gross_outlier_regression(rows: int = 2_000, share: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8))
    y = x @ rng.normal(size=8) + 0.5 * np.sin(2 * x[:, 0]) + 0.3 * x[:, 1] * x[:, 2] + rng.normal(size=rows)
    outliers = rng.random(rows) < share
    y[outliers] += rng.choice([-1.0, 1.0], outliers.sum()) * rng.uniform(8, 20, outliers.sum())
    return x, y


def _counts(rows: int, intercept: float, dispersion: float | None, seed: int):
    """Log-linear counts: Poisson, or negative binomial with var = mu + mu^2 / dispersion."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    mu = np.exp(intercept + x @ rng.normal(scale=0.35, size=6))
    if dispersion is None:
        return x, rng.poisson(mu).astype(float)
    return x, rng.negative_binomial(dispersion, dispersion / (dispersion + mu)).astype(float)


def _make(name: str, head_type: str, metric: str, x, y, noise: LabelNoise | None = None) -> Dataset:
    observed = _with_symmetric_noise(y, noise.rate, seed=7) if noise else y
    return Dataset(name, head_type, metric, np.asarray(x, float), np.asarray(y), np.asarray(observed), noise)


def _student_t_regression(rows: int = 3_000, df: float = 1.5, seed: int = 5):
    """A smooth signal under Student-t noise (infinite variance at df <= 2)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 10))
    return x, np.tanh(x[:, :4]).sum(1) * 2 + x[:, 4:7] @ rng.normal(size=3) + rng.standard_t(df, rows)


def load_datasets() -> list[Dataset]:
    """The suite: balanced, imbalanced, noisy-label, outlier and count tasks, each <= ~5,000 rows."""
    cancer, wine, diabetes = skd.load_breast_cancer(), skd.load_wine(), skd.load_diabetes()
    noise = LabelNoise(rate=0.25, kind="symmetric")
    multi = skd.make_classification(
        n_samples=3_000, n_features=12, n_informative=6, n_redundant=2, n_classes=4,
        weights=[0.8, 0.12, 0.05, 0.03], flip_y=0.0, random_state=1,
    )  # fmt: skip
    rare = skd.make_classification(
        n_samples=4_000, n_features=15, n_informative=5, weights=[0.95], flip_y=0.01, class_sep=0.8,
        random_state=2,
    )  # fmt: skip
    return [
        _make("breast_cancer", "binary", "average_precision", cancer.data, 1 - cancer.target),  # 1: malignant
        _make("digits", "multiclass", "accuracy", *skd.load_digits(return_X_y=True)),
        _make("digits_longtail", "multiclass", "balanced_accuracy", *_long_tail_digits()),
        _make("wine_noise25", "multiclass", "accuracy", wine.data, wine.target, noise),
        _make("imbalanced_4class", "multiclass", "balanced_accuracy", *multi),
        _make("rare_binary_5pct", "binary", "average_precision", *rare),
        _make("diabetes", "regression", "rmse", diabetes.data, diabetes.target),
        _make("outlier_regression", "regression", "mae", *_gross_outlier_regression()),
        _make("student_t_regression", "regression", "mae", *_student_t_regression()),
        _make("negbin_counts", "count", "poisson_deviance", *_counts(2_000, 1.0, 1.0, seed=3)),
        _make("poisson_counts", "count", "poisson_deviance", *_counts(2_000, 0.8, None, seed=4)),
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# Splits and the task a user would describe


def _strata(dataset: Dataset) -> np.ndarray:
    """Stratification labels: classes, or quintiles of a numeric target."""
    if FAMILY[dataset.head_type] == "classification":
        return dataset.y
    return pd.qcut(dataset.y, 5, labels=False, duplicates="drop")


def split_rows(dataset: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stratified 60/20/20 train / validation / test split of the row indices."""
    strata, rows = _strata(dataset), np.arange(len(dataset.y))
    development, test = train_test_split(rows, test_size=0.2, random_state=seed, stratify=strata)
    train, val = train_test_split(
        development, test_size=0.25, random_state=seed, stratify=strata[development]
    )
    return train, val, test


def describe_task(dataset: Dataset, rows: np.ndarray) -> tuple[TaskDescription, np.ndarray, np.ndarray]:
    """Profile the given rows as a user would, then add what a user states: the metric and label noise."""
    frame = pd.DataFrame(dataset.x[rows], columns=[f"x{i}" for i in range(dataset.x.shape[1])])
    frame["target"] = dataset.y_observed[rows]
    profiled = profile_data(frame, target="target", task=dataset.head_type)
    head = profiled.task.heads[0]
    stated = Head.model_validate(
        {**head.model_dump(), "metric": dataset.metric, "label_noise": dataset.noise}
    )
    task = profiled.task.model_copy(update={"heads": [stated]})
    return task, profiled.features, profiled.targets[head.name]


def trial_data(dataset: Dataset, head: Head, seed: int) -> TrialData:
    """One ground-truth split as TrialData: validation rows first in x_val (the 'tune' rows), test rows after.

    Train and validation targets are what the user observes; test targets are clean.
    """
    train, val, test = split_rows(dataset, seed)
    mean, std = dataset.x[train].mean(0), dataset.x[train].std(0)
    x = (dataset.x - mean) / np.where(std > 0, std, 1.0)
    y_seen = dataset.y_observed.astype(float)
    y_test = dataset.y[test].astype(float)
    shift, scale = 0.0, 1.0
    if head.type == "regression":
        shift, scale = float(y_seen[train].mean()), float(y_seen[train].std() or 1.0)
    dtype = torch.float32 if head.type in ("regression", "count") else torch.long

    def target(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((values - shift) / scale).to(dtype)

    return TrialData(
        head=head,
        x_train=torch.as_tensor(x[train], dtype=torch.float32),
        y_train=target(y_seen[train]),
        x_val=torch.as_tensor(np.concatenate([x[val], x[test]]), dtype=torch.float32),
        y_val=torch.cat([target(y_seen[val]), target(y_test)]),
        tune_rows=len(val),
        target_shift=shift,
        target_scale=scale,
    )


# ----------------------------------------------------------------------------------------------------------
# The pool of losses


def fixed_pool(head: Head) -> list[tuple[str, dict, PostHoc | None]]:
    """Generic options per family, as (label, spec, post-hoc)."""
    if head.type in ("binary", "multiclass"):
        counts = np.asarray(head.class_histogram, float)
        weights = [float(f"{w:.6g}") for w in counts.sum() / (len(counts) * np.maximum(counts, 1))]
        pool = [
            ("fixed:ce", {"loss": "cross_entropy"}, None),
            ("fixed:ce_ls0.1", {"loss": "cross_entropy", "params": {"label_smoothing": 0.1}}, None),
            ("fixed:focal_g2", {"loss": "focal", "params": {"gamma": 2.0}}, None),
            ("fixed:weighted_ce", {"loss": "cross_entropy", "params": {"weight": weights}}, None),
            ("fixed:ce+logit_adj", {"loss": "cross_entropy"}, PostHoc(kind="logit_adjustment")),
            ("fixed:gce", {"loss": "gce", "params": {"q": 0.7}}, None),
        ]
        return pool + ([("fixed:bce", {"loss": "bce"}, None)] if head.type == "binary" else [])
    if head.type == "regression":
        delta = round(1.345 * (head.target.robust_scale or 1.0), 6)
        return [
            ("fixed:mse", {"loss": "mse"}, None),
            ("fixed:l1", {"loss": "l1"}, None),
            ("fixed:huber", {"loss": "huber", "params": {"delta": delta}}, None),
            ("fixed:log_cosh", {"loss": "log_cosh"}, None),
        ]
    return [
        ("fixed:poisson", {"loss": "poisson_nll", "params": {"log_input": True}}, None),
        ("fixed:tweedie1.5", {"loss": "tweedie", "params": {"power": 1.5}}, None),
        ("fixed:mse", {"loss": "mse"}, None),
    ]


def build_pool(task: TaskDescription) -> list[Entry]:
    """Every rule candidate for the task plus the fixed pool; equal (spec, post-hoc kind) are one entry."""
    head = task.heads[0]
    proposals = [
        (c.rule_id, c.spec, c.post_hoc) for c in candidates_from(load_rules(), task) if c.head == head.name
    ]
    proposals += [(label, normalize_spec(spec), ph) for label, spec, ph in fixed_pool(head)]
    entries: dict[tuple[str, str], Entry] = {}
    for label, spec, post_hoc in proposals:
        key = entry_key(spec, post_hoc)
        if key in entries:
            entries[key].labels.append(label)
        else:
            entries[key] = Entry([label], spec, post_hoc)
    return list(entries.values())


def index_of(pool: list[Entry], label: str) -> int | None:
    return next((i for i, entry in enumerate(pool) if label in entry.labels), None)


# ----------------------------------------------------------------------------------------------------------
# Ground truth


def _batch_size(train_rows: int) -> int:
    """About ten steps per epoch, between 32 and 256 rows a batch (tiny sets still take many steps)."""
    return int(np.clip(train_rows // 10, 32, 256))


def fit_pool(pool: list[Entry], data: TrialData, metric: str, lr: float, epochs: int, seed: int):
    """Train every distinct spec once on one split (post-hoc entries reuse their base member)."""
    base: dict[str, int] = {}
    members, adapters = [], []
    for entry in pool:
        key = entry.spec.to_json()
        if key not in base:
            trained = core._trial_spec(entry.spec, data)
            adapter = adapter_for(data.head, entry.spec)
            base[key] = len(members)
            members.append(Member(build_loss(trained), adapter, seed_pooling(trained)))
            adapters.append(adapter)
    config = TrainConfig(
        seeds=(seed,), epochs=epochs, budget_s=1e9, batch_size=_batch_size(len(data.x_train)), lr=lr
    )
    score, rows = core._scorer(metric, data), data.tune_rows

    def rate_validation(index: int, predictions: dict[str, torch.Tensor]) -> float:
        return score({k: v[:rows] for k, v in predictions.items()}, data.y_tune)

    trainer = BatchedTrainer(members, core._model_factory(data, config), config)
    run = trainer.fit(
        data.x_train, data.y_train, data.x_val, rate_validation, higher_is_better=HIGHER_IS_BETTER[metric]
    )
    return run, base, adapters


def _recipe_value(entry: Entry, output: torch.Tensor, adapter, data: TrialData, metric: str,
                  tune_rows: int, targets: torch.Tensor) -> float:  # fmt: skip
    """The metric of the entry's post-hoc recipe, tuned on the first ``tune_rows`` rows, scored on the rest"""
    score, higher, kind = core._scorer(metric, data), HIGHER_IS_BETTER[metric], entry.post_hoc.kind
    if kind == "logit_adjustment" and adapter.kind == "softmax":
        return posthoc.logit_adjustment(
            output, adapter, data.class_priors, tune_rows, targets, score, higher
        )[0]
    if kind == "threshold" and data.head.type == "binary":
        return posthoc.threshold(output, adapter, tune_rows, targets, score, higher)[0]
    if kind == "temperature" and adapter.kind in ("softmax", "sigmoid"):
        log_loss = core._scorer("log_loss", data)
        return posthoc.temperature(output, adapter, tune_rows, targets, score, log_loss)[0]
    return score(adapter.predict(output[tune_rows:]), targets[tune_rows:])


def entry_values(entry: Entry, run: TrialRun, base: dict, adapters: list, data: TrialData, metric: str):
    """(validation, test) metric of one entry at its best validation epoch; NaN when it diverged."""
    index = base[entry.spec.to_json()]
    member = next(r for r in run.members if r.candidate == index)
    if member.best_output is None:
        return math.nan, math.nan
    output, adapter, rows = member.best_output, adapters[index], data.tune_rows
    if entry.post_hoc is None:
        test = core._scorer(metric, data)(adapter.predict(output[rows:]), data.y_score)
        return member.best_metric, test
    validation_twice = torch.cat([output[:rows], output[:rows]])
    val = _recipe_value(entry, validation_twice, adapter, data, metric, rows, torch.cat([data.y_tune] * 2))
    return val, _recipe_value(entry, output, adapter, data, metric, rows, data.y_val)


def ground_truth(dataset: Dataset, task: TaskDescription, pool: list[Entry], protocol: Protocol,
                 log: Callable[[str], None]) -> tuple[np.ndarray, float, int]:  # fmt: skip
    """Test values (entries x seeds, larger is better) at each entry's validation-chosen learning rate."""
    head, metric = task.heads[0], dataset.metric
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    seeds = protocol.seeds(len(dataset.y))
    shape = (len(protocol.learning_rates), len(pool), seeds)
    val, test = np.full(shape, np.nan), np.full(shape, np.nan)
    # recommend() sets its own thread count; these small MLPs ran 10-30x slower on 2 threads of a busy box.
    torch.set_num_threads(1)
    started = time.perf_counter()
    for seed in range(seeds):
        data = trial_data(dataset, head, seed)
        for lr_index, lr in enumerate(protocol.learning_rates):
            run, base, adapters = fit_pool(pool, data, metric, lr, protocol.epochs, seed)
            for e, entry in enumerate(pool):
                val[lr_index, e, seed], test[lr_index, e, seed] = entry_values(
                    entry, run, base, adapters, data, metric
                )
        log(f"    seed {seed + 1}/{seeds} done ({time.perf_counter() - started:.0f} s)")
    chosen = np.argmax(np.nan_to_num(sign * _means(val), nan=-np.inf), axis=0)  # per entry
    values = sign * test[chosen, np.arange(len(pool))]
    return values, time.perf_counter() - started, seeds * len(protocol.learning_rates)


# ----------------------------------------------------------------------------------------------------------
# The advisor


def run_advisor(
    task: TaskDescription, features: np.ndarray, targets: np.ndarray, pool: list[Entry]
) -> tuple[list[int], str]:
    """``recommend()`` with default settings on the profiled training rows: its ranking as pool indices, and
    how its trials ran.

    Its loader is pointed at the task profiled (and annotated with the metric and known noise) here and at
    the same encoded rows, so the advisor and the ground truth see identical features.
    """
    head = task.heads[0]
    with mock.patch.object(core, "_load", return_value=(task, {head.name: (features, targets)})):
        result = core.recommend(None)
    keys, head_result = {entry.key: i for i, entry in enumerate(pool)}, result.heads[0]
    epochs, stop = head_result.epochs_completed, head_result.stopped_by
    trials = f"{head_result.train_rows} trial rows, {epochs} epochs, {stop}"
    return [keys.get(entry_key(c.spec, c.post_hoc), -1) for c in head_result.candidates], trials


# ----------------------------------------------------------------------------------------------------------
# Scores


def tie_set(values: np.ndarray, rng: np.random.Generator) -> set[int]:
    """Entries whose paired-bootstrap 95% interval of the difference to the best entry includes 0."""
    best = int(np.nanargmax(_means(values)))
    tied = {best}
    for e, row in enumerate(values):
        paired = np.isfinite(row) & np.isfinite(values[best])
        if e == best or not paired.any():
            continue
        differences = values[best][paired] - row[paired]
        draws = differences[rng.integers(0, len(differences), (BOOTSTRAP_DRAWS, len(differences)))].mean(1)
        low, high = np.quantile(draws, [0.025, 0.975])
        if low <= 0 <= high:
            tied.add(e)
    return tied


def _means(values: np.ndarray) -> np.ndarray:
    """Means over the last axis (seeds) of the finite values; NaN where none is finite."""
    finite = np.isfinite(values)
    counts = finite.sum(-1)
    return np.where(counts > 0, np.where(finite, values, 0.0).sum(-1) / np.maximum(counts, 1), np.nan)


def regret(means: np.ndarray, pick: int | None) -> float:
    """(best - pick) / (best - worst), larger-is-better means; 1 for a missing or diverged pick."""
    best, worst = np.nanmax(means), np.nanmin(means)
    if pick is None or pick < 0 or not np.isfinite(means[pick]):
        return 1.0
    return 0.0 if best == worst else float((best - means[pick]) / (best - worst))


def ranking_tau(values: np.ndarray, ranking: list[int]) -> float:
    """Kendall tau between the advisor's order of its candidates and their ground-truth means."""
    known = [i for i in ranking if i >= 0 and np.isfinite(values[i]).any()]
    if len(known) < 2:
        return math.nan
    return float(kendalltau(-np.arange(len(known)), _means(values[known])).statistic)


def split_half_ceiling(values: np.ndarray, ranking: list[int]) -> float:
    """Tau between the ground truth of the first and of the second half of the seeds (same entries)."""
    half, known = values.shape[1] // 2, [i for i in ranking if i >= 0]
    if half < 1 or len(known) < 2:
        return math.nan
    first, second = _means(values[known, :half]), _means(values[known, half:])
    finite = np.isfinite(first) & np.isfinite(second)
    return float(kendalltau(first[finite], second[finite]).statistic) if finite.sum() >= 2 else math.nan


def score_outcome(outcome: Outcome, rng: np.random.Generator) -> Scores:
    """The protocol's scores of the advisor's ranking against the ground truth."""
    values, ranking, pool = outcome.test_values, outcome.advisor_ranking, outcome.pool
    means, ties = _means(values), tie_set(values, rng)
    pick = ranking[0] if ranking else -1

    def gain_over(label: str) -> float:
        baseline = index_of(pool, label)
        return math.nan if baseline is None or pick < 0 else float(means[pick] - means[baseline])

    return Scores(
        pick=pick, best=int(np.nanargmax(means)), ties=frozenset(ties), hit1=float(pick in ties),
        hit3=float(any(i in ties for i in ranking[:3])), regret=regret(means, pick),
        gain_default=gain_over(DEFAULT_LABEL[outcome.dataset.head_type]),
        gain_la=gain_over("fixed:ce+logit_adj"),
        tau=ranking_tau(values, ranking), tau_ceiling=split_half_ceiling(values, ranking),
    )  # fmt: skip


def _mean_regret(label: str, outcomes: list[Outcome]) -> float:
    return float(np.mean([regret(_means(o.test_values), index_of(o.pool, label)) for o in outcomes]))


def best_fixed_labels(outcomes: list[Outcome]) -> dict[str, str]:
    """Per family, the fixed:* label (present on every dataset of the family) with the lowest mean regret."""
    chosen = {}
    for family in sorted({FAMILY[o.dataset.head_type] for o in outcomes}):
        members = [o for o in outcomes if FAMILY[o.dataset.head_type] == family]
        shared = set.intersection(
            *({name for e in o.pool for name in e.labels if name.startswith("fixed:")} for o in members)
        )
        chosen[family] = min(sorted(shared), key=lambda name: _mean_regret(name, members))
    return chosen


def fixed_baselines(outcomes: list[Outcome]) -> dict[str, dict]:
    """'Always the default loss' and 'the best fixed loss per family in hindsight': hit@1 and mean regret."""
    chosen = best_fixed_labels(outcomes)

    def summary(label_of: Callable[[Outcome], str]) -> dict[str, float]:
        picks = [(o, index_of(o.pool, label_of(o))) for o in outcomes]
        return {
            "hit1": float(np.mean([p in o.scores.ties for o, p in picks])),
            "regret": float(np.mean([regret(_means(o.test_values), p) for o, p in picks])),
        }

    return {
        "always default loss": {
            **summary(lambda o: DEFAULT_LABEL[o.dataset.head_type]),
            "labels": "CE / BCE / MSE / Poisson",
        },
        "best fixed loss (hindsight)": {
            **summary(lambda o: chosen[FAMILY[o.dataset.head_type]]),
            "labels": ", ".join(f"{family}: {name}" for family, name in chosen.items()),
        },
    }


# ----------------------------------------------------------------------------------------------------------
# Report


def _number(value: float, digits: int = 3, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _pair(tau: float, ceiling: float) -> str:
    return f"{_number(tau, 2)} ({_number(ceiling, 2)})"


def _short(label: str, width: int = 34) -> str:
    return label if len(label) <= width else label[: width - 1] + "~"


def table_rows(outcomes: list[Outcome], protocol: Protocol) -> list[dict[str, str]]:
    """One row per dataset."""
    rows = []
    for o in outcomes:
        s, pool, seeds, lrs = o.scores, o.pool, o.test_values.shape[1], len(protocol.learning_rates)
        rows.append({
            "dataset": o.dataset.name, "n": str(len(o.dataset.y)), "metric": o.dataset.metric,
            "advisor pick": _short(pool[s.pick].labels[0] if s.pick >= 0 else "(not in pool)"),
            "ground-truth best": _short(pool[s.best].labels[0]), "ties": f"{len(s.ties)}/{len(pool)}",
            "hit@1": "hit" if s.hit1 else "MISS", "hit@3": "hit" if s.hit3 else "MISS",
            "regret": _number(s.regret), "vs default": _number(s.gain_default, 4, True),
            "vs CE+LA": _number(s.gain_la, 4, True), "tau (ceil)": _pair(s.tau, s.tau_ceiling),
            "advisor s": f"{o.advisor_s:.1f}", "truth s": f"{o.truth_s:.0f} ({seeds}x{lrs})",
            "try-all s": f"{o.truth_s / o.fits:.1f}", "adv/truth": f"{o.advisor_s / o.truth_s:.3f}",
        })  # fmt: skip
    return rows


def summary_rows(outcomes: list[Outcome], baselines: dict[str, dict]) -> list[dict[str, str]]:
    """The advisor's means over the suite, then the baselines' hit@1 and mean regret."""

    def mean(name: str) -> float:
        return float(np.nanmean([getattr(o.scores, name) for o in outcomes]))

    advisor_s, truth_s = sum(o.advisor_s for o in outcomes), sum(o.truth_s for o in outcomes)
    rows = [{
        "dataset": "ADVISOR (mean)", "hit@1": _number(mean("hit1"), 2), "hit@3": _number(mean("hit3"), 2),
        "regret": _number(mean("regret")), "tau (ceil)": _pair(mean("tau"), mean("tau_ceiling")),
        "advisor s": f"{advisor_s:.0f}", "truth s": f"{truth_s:.0f}",
        "adv/truth": f"{advisor_s / truth_s:.3f}",
    }]  # fmt: skip
    for name, base in baselines.items():
        rows.append(
            {"dataset": name.upper(), "hit@1": _number(base["hit1"], 2), "regret": _number(base["regret"])}
        )
    return rows


COLUMNS = (
    "dataset", "n", "metric", "advisor pick", "ground-truth best", "ties", "hit@1", "hit@3", "regret",
    "vs default", "vs CE+LA", "tau (ceil)", "advisor s", "truth s", "try-all s", "adv/truth",
)  # fmt: skip


def render_text(rows: list[dict[str, str]]) -> str:
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS), "  ".join("-" * widths[c] for c in COLUMNS)]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def render_markdown(rows: list[dict[str, str]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r.get(c, "") for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def verdict(outcomes: list[Outcome], baselines: dict[str, dict]) -> str:
    """Beats the best fixed loss on mean regret at hit@1 >= 0.85? Cheaper than trying every loss (small n)?"""
    hit1 = np.mean([o.scores.hit1 for o in outcomes])
    mean_regret = np.mean([o.scores.regret for o in outcomes])
    fixed = baselines["best fixed loss (hindsight)"]["regret"]
    quality = mean_regret < fixed and hit1 >= 0.85
    small = [o for o in outcomes if len(o.dataset.y) < SMALL_DATA_ROWS]
    one_pass = sum(o.advisor_s < o.truth_s / o.fits for o in small)
    exhaustive = sum(o.advisor_s < o.truth_s for o in small)
    cost = bool(small) and one_pass == len(small)
    return (
        f"VERDICT quality: {'PASS' if quality else 'MISS'} (advisor mean regret {mean_regret:.3f} vs best "
        f"fixed loss {fixed:.3f}; hit@1 {hit1:.2f}, needs >= 0.85). Cost on small data (n < "
        f"{SMALL_DATA_ROWS}): {'PASS' if cost else 'MISS'} (advisor cheaper than one try-every-loss pass on "
        f"{one_pass}/{len(small)} small datasets, than the exhaustive search on {exhaustive}/{len(small)})."
    )


def report(outcomes: list[Outcome], protocol: Protocol, markdown: bool = False) -> str:
    """The table, its legend, the baselines' losses and the verdict."""
    baselines = fixed_baselines(outcomes)
    rows = table_rows(outcomes, protocol) + summary_rows(outcomes, baselines)
    legend = [
        "hit@1 / hit@3: the advisor's first / a top-3 pick is in the tie set (paired-bootstrap 95% interval",
        "of the best). regret: (best - pick) / (best - worst). vs default, vs CE+LA: pick mean minus that",
        "loss's mean in metric units, + = pick better. tau: Kendall tau of the advisor's order of its",
        "candidates against the ground truth (ceil: split-half tau of the ground truth). truth s: the",
        "exhaustive search (seeds x learning rates); try-all s: one pass over every pool entry (1 seed, 1",
        "learning rate). Advisor time includes profiling; it trains on split 0's training rows only.",
        f"Baselines: always default = {baselines['always default loss']['labels']}; best fixed loss per"
        f" family in hindsight = {baselines['best fixed loss (hindsight)']['labels']}.",
    ]
    table = render_markdown(rows) if markdown else render_text(rows)
    return "\n".join([table, "", *legend, verdict(outcomes, baselines)])


def describe_truth(outcome: Outcome) -> str:
    """Pool entries by ground-truth mean (metric units), best first; the advisor's candidates starred."""
    sign = 1.0 if HIGHER_IS_BETTER[outcome.dataset.metric] else -1.0
    means = _means(outcome.test_values)
    order = sorted(range(len(means)), key=lambda i: -np.nan_to_num(means[i], nan=-np.inf))
    advised = set(outcome.advisor_ranking)
    return ", ".join(
        f"{outcome.pool[i].labels[0]}{'*' if i in advised else ''} {sign * means[i]:.4g}" for i in order
    )


def _describe_spec(entry: Entry) -> str:
    """The loss and its non-default parameters, plus the post-hoc recipe."""
    fields = get_loss_info(entry.spec.loss).params_model.model_fields
    changed = {k: v for k, v in entry.spec.params.items() if k not in fields or fields[k].default != v}
    return (
        entry.spec.loss
        + (f" {_short(str(changed), 70)}" if changed else "")
        + (f" + post-hoc {entry.post_hoc.kind}" if entry.post_hoc else "")
    )


def evaluate(
    dataset: Dataset, protocol: Protocol, rng: np.random.Generator, log: Callable[[str], None]
) -> Outcome:
    """Advisor and ground truth on one dataset."""
    train, _, _ = split_rows(dataset, seed=0)
    started = time.perf_counter()
    task, features, targets = describe_task(dataset, train)
    pool = build_pool(task)
    ranking, trials = run_advisor(task, features, targets, pool)
    advisor_s = time.perf_counter() - started
    top = pool[ranking[0]] if ranking and ranking[0] >= 0 else None
    pick = f"{top.labels[0]} = {_describe_spec(top)}" if top else "?"
    log(f"  advisor: {advisor_s:.1f} s ({trials} stopped it), {len(ranking)} candidates, rank 1: {pick}")
    values, truth_s, fits = ground_truth(dataset, task, pool, protocol, log)
    outcome = Outcome(dataset, pool, values, truth_s, fits, ranking, advisor_s)
    log("  truth: " + describe_truth(outcome))
    outcome.scores = score_outcome(outcome, rng)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 datasets, 2 seeds, 15 epochs, one learning rate"
    )
    parser.add_argument("--out", type=Path, help="also write the table as Markdown to this file")
    args = parser.parse_args(argv)
    protocol = QUICK if args.quick else Protocol()
    suite = [d for d in load_datasets() if not args.quick or d.name in QUICK_DATASETS]
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)

    log(f"{len(suite)} datasets, protocol {protocol}, ground truth on 1 torch thread")
    rng = np.random.default_rng(0)
    outcomes = []
    for number, dataset in enumerate(suite, 1):
        log(f"{number}/{len(suite)} {dataset.name}: {len(dataset.y)} rows, metric {dataset.metric}")
        outcomes.append(evaluate(dataset, protocol, rng, log))
    print("\n" + report(outcomes, protocol))
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    if args.out:
        args.out.write_text(report(outcomes, protocol, markdown=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
