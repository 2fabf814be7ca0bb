"""Joint multi-task trials: the heads trained together, to compare the weighting schemes of ``multi_task``.

For a task whose heads share their feature rows (the user's table with a target column per head), each
repeat trains one shared-trunk MLP per weighting scheme: the trunk of the standalone trial MLP
(:func:`advisor.trials.models.standalone_mlp`, Linear -> ReLU) and one linear output per head (the last layer's
rows split by head; each head's width is its winning loss's adapter's), under the catalog ``multi_task`` loss
over each head's winning spec. The schemes (:data:`SCHEMES`):

* static equal: w_k = 1 (the baseline; tuned scalarisation matches specialised optimisers, Kurin et al. 2022);
* static by inverse initial loss: w_k = K (1 / L_k(0)) / sum_j (1 / L_j(0)), L_k(0) the head losses of the
  untrained model on the repeat's training rows, so the weights sum to K and every head starts at the same
  weighted loss (the normalisation by initial loss of GradNorm's loss ratios, Chen et al. 2018);
* uncertainty (Kendall et al. 2018): sum_k 0.5 exp(-s_k) L_k + 0.5 s_k, the log-variances s_k optimised with
  the model;
* dwa (Liu et al. 2019): w_k = K softmax_k(r_k / T), r_k = L_k(t-1) / L_k(t-2), T = 2, recomputed by
  ``end_epoch()`` after every epoch.

Repeats are paired: repeat r is the same split (:func:`~advisor.trials.data.repeat_splits`, stratified on the
first class head, as that head's own trials are), seed, initial weights and batch order for every scheme.

The combined score of one model on some rows is

    C = (1 / |H|) sum_{k in H} (m_k - c_k) / (b_k - c_k)

with m_k head k's metric, c_k its chance level (the metric of a feature-blind prediction: the class frequencies,
label rates or distribution mean, or the target's mean and variance, of the trial rows, scored on those rows),
and b_k the mean of head k's own winner in its single-head trials. C is 1 when every head is as good as trained
alone and 0 at chance. It is direction-aware without a sign: for a lower-is-better metric (rmse, log_loss)
both differences are negative while the head beats chance, so each ratio still grows as the head improves.
H holds the heads whose winner clearly beat chance alone (the 95% interval of its single-head mean lies on
the better side of c_k); a head that did not has no clear gain to keep, and dividing by a gain near 0 would
let its noise swamp the other heads, so it is reported but left out. c_k and b_k are constants per head, so C is a fixed weighted sum of
the head metrics and a paired difference of C is a weighted sum of the heads' metric differences.

Each training protocol of the options reads the same runs, choosing its epoch by C on tune rows; the head
metrics and C are read on score rows, and a repeat counts the worst protocol's C (as single-head trials do).
The stopping rule is epochs and repeats; ``budget_s`` caps the time (the first epoch always runs) and the
cancel check is polled between steps: what was computed is kept and ``stopped_by`` says what cut it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from advisor.heads import HIGHER_IS_BETTER
from advisor.losses import build_loss, checks
from advisor.ranking import RepeatValues
from advisor.recommendation import Evidence, HeadShare, ProtocolEvidence
from advisor.spec import LossSpec
from advisor.task import TaskDescription
from advisor.trials.adapters import Adapter, adapter_for
from advisor.trials.data import Splits, TrialData, _subsample, prepare, repeat_splits
from advisor.trials.evidence import TrialOptions, batch_size, default_repeats, scorer, trial_spec
from advisor.trials.kinds import trials_for
from advisor.trials.models import StackedMLP, standalone_mlp
from advisor.trials.trainer import FusedAdamW, MemberRun, Progress, TrainConfig, _batches

COMBINED_METRIC = "combined_score"


class JointTrialsUnavailable(ValueError):
    """Joint trials cannot run for this task; the message says why."""


COMBINED_FORMULA = (
    "mean over the heads whose own winner clearly beat chance (its single-head 95% interval) of (m - c) / "
    "(b - c): m the head's metric in the joint "
    "model, c its chance level (a feature-blind prediction on the trial rows), b its winner's mean in its "
    "single-head trials; 1 is as good as each head trained alone, 0 chance, for higher- and lower-is-better "
    "metrics alike"
)


@dataclass(frozen=True)
class Scheme:
    """A weighting scheme of the ``multi_task`` loss as joint trials train it; the title, rationale and
    references describe a scheme that no rule template proposes."""

    name: str
    label: str
    weighting: Mapping[str, Any]  # the spec's weighting; the inverse-initial-loss weights are set per repeat
    inverse_initial: bool = False
    title: str = ""
    rationale: str = ""
    references: tuple[str, ...] = ()


SCHEMES = (
    Scheme("static", "static equal", {"scheme": "static"}),
    Scheme(
        "inverse_initial_loss",
        "static by inverse initial loss",
        {"scheme": "static"},
        inverse_initial=True,
        title="Static weights from the inverse initial head losses",
        rationale="Fixed weights w_k = K (1 / L_k(0)) / sum_j (1 / L_j(0)) from each head's loss of the untrained "
        "model start every head at the same weighted loss, so no head dominates by its loss's scale alone. "
        "The weights are the trials' (the median over repeats, with a regression target rescaled as the "
        "trials rescale it); recompute them from your model's first losses.",
        references=(
            "Chen et al. (2018), GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep "
            "Multitask Networks, ICML",
        ),
    ),
    Scheme("uncertainty", "uncertainty", {"scheme": "uncertainty"}),
    Scheme(
        "dwa",
        "dwa",
        {"scheme": "dwa", "temperature": 2.0},
        title="Dynamic weight average of the head losses",
        rationale="w_k = K softmax(r_k / T) with r_k = L_k(t-1) / L_k(t-2), T = 2: heads whose loss falls "
        "slowest get more weight each epoch (call loss.end_epoch() after every epoch).",
        references=("Liu et al. (2019), End-to-End Multi-Task Learning with Attention, CVPR",),
    ),
)


@dataclass(frozen=True)
class JointHead:
    """One head of a joint trial: its data on the rows every head shares, its winning spec (in the user's
    units), that winner's mean in its single-head trials (b_k of the combined score) and the 95% interval of
    that mean (None: b_k alone decides whether the head beat chance)."""

    data: TrialData
    spec: LossSpec
    single_head: float
    single_head_interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class HeadReference:
    """The constants that normalise one head in the combined score."""

    head: str
    metric: str
    chance: float  # c_k
    single_head: float  # b_k
    counted: bool  # b_k clearly beats c_k: the head is part of the combined score


@dataclass
class JointEvidence:
    """Per scheme (in :attr:`schemes` order) the combined-score evidence with each head's metric, the
    weighting to recommend, and how the joint trials ran."""

    schemes: list[Scheme]
    evidence: list[Evidence]
    weightings: list[dict[str, Any]]
    references: list[HeadReference]
    stopped_by: str
    epochs_completed: int
    elapsed_s: float
    train_rows: int
    score_rows: int
    repeats: int
    member_epochs: int
    skipped: list[str]  # schemes that could not run, each with its reason


def joint_data(
    task: TaskDescription,
    real: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
    *,
    max_rows: int,
    seed: int,
) -> list[TrialData]:
    """Every head's trial data on the same rows, in task order; raises :class:`JointTrialsUnavailable`.

    The rows are one subsample of at most ``max_rows`` (stratified on the first class head with the trials'
    seed, so that head trains on the rows of its own trials); each head's target is then prepared as in its
    single-head trials (a regression target rescaled by the same rule).
    """
    if real is None:
        raise JointTrialsUnavailable(
            "synthetic trial data is generated head by head, with no feature rows the heads share; joint "
            "trials need your data (one table with a target column per head)"
        )
    heads = task.heads
    for head in heads:  # the shared trunk is an MLP over feature rows (dense heads train conv nets)
        if head.kind.layout != "table":
            raise JointTrialsUnavailable(
                f"head '{head.name}' is a {head.type} head; joint trials train tabular heads"
            )
    x = real[heads[0].name][0]
    if any(real[h.name][0] is not x and not np.array_equal(real[h.name][0], x) for h in heads[1:]):
        raise JointTrialsUnavailable("the heads' data do not share their feature rows")
    strat = next((h for h in heads if h.kind.class_labels), heads[0])
    keep, _ = _subsample(np.arange(len(x)), real[strat.name][1], strat, max_rows, seed)
    return [prepare(x[keep], real[h.name][1][keep], h, max_rows=len(keep), seed=seed) for h in heads]


def chance_level(data: TrialData) -> float:
    """The head's metric for its kind's feature-blind prediction on all its rows (``KindTrials.blind``: the
    class frequencies, the label rates or mean distribution, or the target's mean with its variance)."""
    return scorer(data.head.metric, data)(trials_for(data.head).blind(data), data.y)


def head_shares(metrics: Sequence[float], references: Sequence[HeadReference]) -> list[float | None]:
    """(m_k - c_k) / (b_k - c_k) per head (None for a head left out of the combined score)."""
    return [
        (m - r.chance) / (r.single_head - r.chance) if r.counted else None
        for m, r in zip(metrics, references, strict=True)
    ]


def combined_score(metrics: Sequence[float], references: Sequence[HeadReference]) -> float:
    """C = mean over the counted heads of (m_k - c_k) / (b_k - c_k) (module docstring); NaN when a counted
    head's metric is not finite."""
    shares = [s for s in head_shares(metrics, references) if s is not None]
    return float(np.mean(shares)) if shares and all(math.isfinite(s) for s in shares) else math.nan


def references_for(heads: Sequence[JointHead]) -> list[HeadReference]:
    """Each head's chance level and single-head result; a head counts when its single-head interval (or its
    mean, without one) lies on the better side of chance. Raises when no head counts."""
    found = []
    for head in heads:
        chance, single = chance_level(head.data), head.single_head
        low, high = head.single_head_interval or (single, single)
        better = low > chance if HIGHER_IS_BETTER[head.data.head.metric] else high < chance
        found.append(HeadReference(head.data.head.name, head.data.head.metric, chance, single, better))
    if not any(r.counted for r in found):
        raise JointTrialsUnavailable(
            "no head's own winner clearly beat its chance level in its single-head trials, so the combined score "
            "has no gain to normalise by"
        )
    return found


def inverse_initial_weights(initial: Sequence[float]) -> list[float]:
    """w_k = K (1 / L_k(0)) / sum_j (1 / L_j(0)): weights summing to K under which every head's weighted
    initial loss w_k L_k(0) is the same; ValueError unless every L_k(0) is positive and finite."""
    if not all(math.isfinite(v) and v > 0 for v in initial):
        raise ValueError(f"initial losses must be positive and finite, got {list(initial)}")
    inverse = [1.0 / v for v in initial]
    return [len(initial) * v / sum(inverse) for v in inverse]


class _Layout:
    """How one member's (rows, width) output splits into the heads' outputs: one slice per head, each as wide
    as its winning loss's adapter needs."""

    def __init__(self, heads: Sequence[JointHead]) -> None:
        self.names = [h.data.head.name for h in heads]
        self.adapters: list[Adapter] = [adapter_for(h.data.head, h.spec) for h in heads]
        widths = [a.out_dim for a in self.adapters]
        self.slices = [slice(sum(widths[:k]), sum(widths[: k + 1])) for k in range(len(widths))]
        self.width = sum(widths)

    def inputs(self, output: Tensor) -> dict[str, Tensor]:
        """One member's raw output -> each head's loss input."""
        return {
            n: a.loss_input(output[:, s])
            for n, a, s in zip(self.names, self.adapters, self.slices, strict=True)
        }

    def targets(self, ys: Sequence[Tensor], rows: Tensor) -> dict[str, Tensor]:
        """The heads' stored targets of ``rows`` -> each head's loss target."""
        return {n: a.loss_target(y[rows]) for n, a, y in zip(self.names, self.adapters, ys, strict=True)}

    def predictions(self, output: Tensor) -> list[dict[str, Tensor]]:
        return [a.predict(output[:, s]) for a, s in zip(self.adapters, self.slices, strict=True)]


@torch.no_grad()
def initial_losses(
    heads: Sequence[JointHead], layout: _Layout, specs: Mapping[str, Any], splits: Splits, config: TrainConfig
) -> list[list[float]]:
    """L_k(0) per repeat and head: each head's loss of the untrained model (the standalone twin of the repeat's
    members, :func:`standalone_mlp` at its seed) on all the repeat's training rows. The catalog's target checks
    run here, once."""
    losses = [build_loss(specs[name]) for name in layout.names]
    ys, x = [h.data.y for h in heads], heads[0].data.x
    found = []
    for repeat, seed in enumerate(config.seeds):
        rows = splits.train[repeat]
        output = standalone_mlp(x.shape[1], config.hidden, layout.width, seed)(x[rows])
        inputs, targets = layout.inputs(output), layout.targets(ys, rows)
        found.append(
            [float(loss(inputs[n], targets[n])) for loss, n in zip(losses, layout.names, strict=True)]
        )
    return found


def _median_weights(per_repeat: Sequence[Sequence[float]], names: Sequence[str]) -> dict[str, float]:
    """The spec's inverse-initial-loss weights: the median over repeats, rescaled to sum to K again."""
    median = np.median(np.asarray(per_repeat), axis=0)
    median = median * len(names) / median.sum()
    return {name: round(float(w), 4) for name, w in zip(names, median, strict=True)}


def evaluate_joint(
    heads: Sequence[JointHead],
    options: TrialOptions,
    *,
    schemes: Sequence[Scheme] = SCHEMES,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> JointEvidence:
    """Train every scheme's shared-trunk model on the same repeats; evidence per scheme (module docstring).

    Raises :class:`JointTrialsUnavailable` when no head beat its chance level alone.
    """
    started = time.perf_counter()
    references = references_for(heads)
    strat = next((h.data for h in heads if h.data.head.kind.class_labels), heads[0].data)
    repeats = options.repeats or default_repeats(strat.rows)
    splits = repeat_splits(strat, 0, repeats, options.seed)
    config = TrainConfig(
        seeds=tuple(options.seed + r for r in range(repeats)),
        epochs=options.epochs,
        budget_s=options.budget_s,
        batch_size=options.batch_size or batch_size(strat.head.type, splits.train.shape[1]),
        lr=options.lr,
        device=options.device,
    )
    specs = {h.data.head.name: trial_spec(h.spec, h.data).model_dump() for h in heads}
    layout = _Layout(heads)
    initial = initial_losses(heads, layout, specs, splits, config)
    chosen, skipped, weights = [], [], []
    for scheme in schemes:
        if scheme.inverse_initial:
            try:
                weights = [inverse_initial_weights(losses) for losses in initial]
            except ValueError:  # e.g. a Gaussian NLL head, whose loss can start at or below 0
                low = sorted(
                    {n for row in initial for n, v in zip(layout.names, row, strict=True) if not v > 0}
                )
                skipped.append(f"{scheme.label}: the initial loss of {', '.join(low)} is not positive")
                continue
        chosen.append(scheme)
    trials = _Trials(heads, chosen, references, splits, config, options, layout, specs, weights)
    stopped, epochs, member_epochs = trials.fit(progress, cancel, started)
    weightings = [
        {**s.weighting, "weights": _median_weights(weights, layout.names)}
        if s.inverse_initial
        else dict(s.weighting)
        for s in chosen
    ]
    return JointEvidence(
        schemes=chosen,
        evidence=[trials.evidence(index) for index in range(len(chosen))],
        weightings=weightings,
        references=references,
        stopped_by=stopped,
        epochs_completed=epochs,
        elapsed_s=time.perf_counter() - started,
        train_rows=splits.train.shape[1],
        score_rows=splits.score.shape[1],
        repeats=repeats,
        member_epochs=member_epochs,
        skipped=skipped,
    )


class _Trials:
    """The (repeat, scheme) members of one joint trial: member ``repeat * schemes + scheme``."""

    def __init__(
        self, heads: Sequence[JointHead], schemes: Sequence[Scheme], references: Sequence[HeadReference],
        splits: Splits, config: TrainConfig, options: TrialOptions, layout: _Layout, specs: Mapping[str, Any],
        weights: Sequence[Sequence[float]],
    ) -> None:  # fmt: skip
        self.heads, self.schemes, self.references = heads, list(schemes), list(references)
        self.splits, self.config, self.options, self.layout = splits, config, options, layout
        self.device = torch.device(config.device)
        self.x = heads[0].data.x.to(self.device)
        self.ys = [h.data.y.to(self.device) for h in heads]
        self.scorers = [scorer(h.data.head.metric, h.data) for h in heads]
        # One output layer of layout.width rows is one linear output per head, each initialised as its own.
        self.net = StackedMLP(self.x.shape[1], config.hidden, layout.width, list(config.seeds), len(schemes))
        self.net.to(self.device)
        self.losses = []
        for repeat in range(splits.repeats):
            for scheme in schemes:
                weighting = dict(scheme.weighting)
                if scheme.inverse_initial:
                    weighting["weights"] = dict(zip(layout.names, weights[repeat], strict=True))
                spec = {"loss": "multi_task", "params": {"heads": dict(specs), "weighting": weighting}}
                self.losses.append(build_loss(spec).to(self.device))
        self.runs = [MemberRun(s, r) for r in range(splits.repeats) for s in range(len(schemes))]
        learned = [p for loss in self.losses for p in loss.parameters()]  # uncertainty's log-variances
        self.optimizers = [FusedAdamW(list(self.net.parameters()), config.lr, config.weight_decay)]
        if learned:  # no weight decay on the log-variances: it would pull every head's weight towards 1
            self.optimizers.append(FusedAdamW(learned, config.lr, 0.0))

    @property
    def members(self) -> int:
        return len(self.runs)

    def fit(
        self, progress: Callable[[Progress], None] | None, cancel: Callable[[], bool] | None, started: float
    ) -> tuple[str, int, int]:
        """Train until the epochs, every protocol's patience, the time cap, a cancel or divergence stops it;
        returns (stop reason, epochs completed, member-epochs)."""
        alive = [True] * self.members
        patience = {p.name: p.patience for p in self.options.protocols}
        stopped, done = "epochs", 0
        # The targets were checked once by the initial losses; unchecked calls do not sync every step.
        with checks(False):
            for epoch in range(self.config.epochs):
                reason = self._epoch(epoch, alive, cancel, started, done)
                if reason is not None:
                    stopped = reason
                    break
                done += 1
                self._evaluate(alive, patience)
                if progress is not None:
                    best = [
                        c.tune_value
                        for r in self.runs
                        for c in r.choices.values()
                        if c.tune_value is not None
                    ]
                    progress(Progress(done, self.config.epochs, sum(alive), self.members, max(best, default=None),
                                      time.perf_counter() - started))  # fmt: skip
                if not any(alive):
                    stopped = (
                        "diverged"
                        if all(r.diverged_at_epoch is not None for r in self.runs)
                        else "early_stopping"
                    )
                    break
        return stopped, done, sum(len(r.train_loss) for r in self.runs)

    def _epoch(
        self, epoch: int, alive: list[bool], cancel: Callable[[], bool] | None, started: float, done: int
    ) -> str | None:
        """One pass over every repeat's training rows; a stop reason, or None when the epoch completed."""
        schemes = len(self.schemes)
        batches = _batches(self.splits, self.config.batch_size, self.config.seeds, epoch).to(self.device)
        sums = torch.zeros(self.members, device=self.device)
        living = torch.tensor(alive, device=self.device)
        zero = torch.zeros((), device=self.device)
        for indices in batches:  # (repeats, batch) rows
            if cancel is not None and cancel():
                return "cancelled"
            if done and time.perf_counter() - started > self.config.budget_s:  # never cuts the first epoch
                return "time"
            output = self.net(self.x[indices])  # (members, batch, width)
            targets = [self.layout.targets(self.ys, rows) for rows in indices]
            values = torch.stack([
                self.losses[m](self.layout.inputs(output[m]), targets[m // schemes]) if alive[m] else zero
                for m in range(self.members)
            ])  # fmt: skip
            kept = living & torch.isfinite(values)  # a diverging member must not poison the shared backward
            total = torch.where(kept, values, torch.zeros_like(values)).sum()
            for optimizer in self.optimizers:
                optimizer.zero_grad()
            total.backward()
            for optimizer in self.optimizers:
                optimizer.step()
            sums += values.detach()
        for m, value in enumerate(sums.cpu().tolist()):
            run = self.runs[m]
            if alive[m] and not math.isfinite(value):
                alive[m], run.diverged_at_epoch = False, epoch
            elif alive[m]:
                run.train_loss.append(value / max(len(batches), 1))
                self.losses[m].end_epoch()  # DWA re-weights from the last two epochs; the others only record
        return None

    def _metrics(self, output: Tensor, repeat: int, part: str) -> list[float]:
        """Each head's metric of one member's validation output on its repeat's tune or score rows."""
        tune = self.splits.tune_rows
        rows = (self.splits.tune if part == "tune" else self.splits.score)[repeat]
        output = output[:tune] if part == "tune" else output[tune:]
        predictions = self.layout.predictions(output)
        return [
            score(p, y[rows.to(y.device)].cpu())
            for score, p, y in zip(self.scorers, predictions, self.ys, strict=True)
        ]

    @torch.no_grad()
    def _evaluate(self, alive: list[bool], patience: dict[str, int | None]) -> None:
        output = self.net(self.x[self.splits.validation.to(self.device)]).cpu()
        for m, run in enumerate(self.runs):
            if not alive[m]:
                continue
            value = combined_score(self._metrics(output[m], run.repeat, "tune"), self.references)
            run.observe(value, output[m], True, patience)
            if run.done:
                alive[m] = False

    def _score_rows(self, run: MemberRun) -> tuple[list[float | None], float, list[float]]:
        """Per protocol the combined score on score rows (None: nothing kept, or not finite); the repeat's
        ranking value, the worst protocol's, and the head metrics at it (NaN when any protocol has none)."""
        values: list[float | None] = []
        worst, at_worst = math.inf, [math.nan] * len(self.heads)
        for protocol in self.options.protocols:
            choice = run.choices.get(protocol.name)
            if choice is None or choice.output is None:
                values.append(None)
                continue
            metrics = self._metrics(choice.output, run.repeat, "score")
            value = combined_score(metrics, self.references)
            values.append(value if math.isfinite(value) else None)
            if math.isfinite(value) and value < worst:
                worst, at_worst = value, metrics
        if None in values:
            return values, math.nan, [math.nan] * len(self.heads)
        return values, worst, at_worst

    def evidence(self, scheme: int) -> Evidence:
        """The scheme's combined score per repeat (the worst protocol's) and each head's metric at it."""
        runs = [r for r in self.runs if r.candidate == scheme]
        protocols = self.options.protocols
        read = [self._score_rows(run) for run in runs]
        by_protocol = [[values[i] for values, _, _ in read] for i in range(len(protocols))]
        ranked = RepeatValues(tuple(value for _, value, _ in read), True)
        interval = ranked.interval()
        head_values = [[metrics[k] for _, _, metrics in read] for k in range(len(self.heads))]
        per_repeat_shares = [head_shares(metrics, self.references) for _, _, metrics in read]
        per_head = []
        for k, reference in enumerate(self.references):
            higher = HIGHER_IS_BETTER[reference.metric]
            shares = [s for row in per_repeat_shares if (s := row[k]) is not None and math.isfinite(s)]
            per_head.append(HeadShare(
                head=reference.head, metric=reference.metric, higher_is_better=higher,
                per_repeat=[v if math.isfinite(v) else None for v in head_values[k]],
                mean=RepeatValues(tuple(head_values[k]), higher).mean,
                share=float(np.mean(shares)) if shares else None,
            ))  # fmt: skip
        return Evidence(
            metric=COMBINED_METRIC,
            per_repeat=[v if math.isfinite(v) else None for v in ranked.values],
            mean=ranked.mean,
            std=ranked.std,
            ci_low=interval[0] if interval else None,
            ci_high=interval[1] if interval else None,
            protocols=[
                ProtocolEvidence(
                    name=p.name,
                    description=p.describe(self.options.epochs),
                    per_repeat=by_protocol[i],
                    mean=RepeatValues(tuple(math.nan if v is None else v for v in by_protocol[i]), True).mean,
                    epochs=[None if (c := r.choices.get(p.name)) is None else c.epoch for r in runs],
                )
                for i, p in enumerate(protocols)
            ],
            repeats=len(runs),
            diverged_repeats=sum(r.diverged_at_epoch is not None for r in runs),
            curves=[r.tune_curve for r in runs],
            per_head=per_head,
        )
