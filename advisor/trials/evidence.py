"""The evidence layer: one head's candidates and data in, evidence per candidate out.

``evaluate_head`` trains the candidates in rounds of repeats. Each repeat is a fresh stratified split with its
own initialisation; every training protocol is read off the same runs (the epoch is chosen on tune rows,
post-hoc parameters are tuned on tune rows, the metric is read on score rows). A candidate's value in a
repeat is the worst of its protocols' values, so a loss ranks high only when it is good however the user
stops training. Between rounds, candidates clearly behind the leader are dropped (racing), so the repeats
go where the decision is close. The stopping rule is epochs and repeats; the time budget is only a cap, and
when it binds the result names what it cut.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from advisor.heads import DEFAULT_TWEEDIE_POWER, HIGHER_IS_BETTER, head_kind
from advisor.losses import build_loss, get_loss_info
from advisor.ranking import RepeatValues, clearly_behind
from advisor.recipes import smoothed_priors
from advisor.recommendation import Evidence, ProtocolEvidence, candidate_name
from advisor.rules import Candidate
from advisor.spec import LossSpec
from advisor.trials import metrics
from advisor.trials.adapters import Adapter, adapter_for, seed_pooling
from advisor.trials.data import Splits, TrialData, repeat_splits
from advisor.trials.kinds import trials_for
from advisor.trials.posthoc import RecipeInputs, Scorer, recipe_for
from advisor.trials.protocols import DEFAULT_BUDGET_S, DEFAULT_EPOCHS, DEFAULT_PROTOCOLS, Protocol
from advisor.trials.trainer import BatchedTrainer, Member, MemberRun, ModelFactory, Progress, TrainConfig

FIRST_ROUND = 3  # repeats every candidate gets before racing may drop it
DENSE_BATCH = 16  # images or clips per step: a dense member costs far more per row than a tabular one
MIN_BATCH = 32
MIN_STEPS_PER_EPOCH = 16


@dataclass(frozen=True)
class TrialOptions:
    """How one head's trials run. ``repeats`` None: by the number of rows (:func:`default_repeats`)."""

    repeats: int | None = None
    epochs: int = DEFAULT_EPOCHS
    budget_s: float = DEFAULT_BUDGET_S
    device: str = "cpu"
    seed: int = 0
    lr: float = TrainConfig.lr
    batch_size: int | None = None
    protocols: tuple[Protocol, ...] = DEFAULT_PROTOCOLS
    race: bool = True


@dataclass
class HeadEvidence:
    """Evidence per candidate (in the candidates' order) and how the trials ran."""

    evidence: list[Evidence]
    stopped_by: str
    epochs_completed: int
    elapsed_s: float
    train_rows: int
    score_rows: int
    repeats: int
    member_epochs: int
    cut_short: list[str] = field(default_factory=list)
    synthetic: bool = False  # trained on data generated to match a description, not the user's


def default_repeats(rows: int) -> int:
    """More repeats for small data, where which rows land in the score part moves a ranking most."""
    return 10 if rows < 1_000 else 6 if rows < 5_000 else 4


def batch_size(head_type: str, train_rows: int) -> int:
    """Rows per step: small data still gets several steps an epoch (a fixed 256 gave 124 rows one step)."""
    if head_kind(head_type).dense:
        return DENSE_BATCH
    return int(min(TrainConfig.batch_size, max(MIN_BATCH, train_rows // MIN_STEPS_PER_EPOCH)))


def trial_spec(spec: LossSpec, data: TrialData) -> LossSpec:
    """The spec as trials train it: parameters in target units rescaled to the rescaled target."""
    scale = data.target_scale
    if not data.head.kind.rescaled_target or scale == 1.0:
        return spec
    fields = get_loss_info(spec.loss).params_model.model_fields
    params = {
        name: value / scale if (fields[name].json_schema_extra or {}).get("units") == "target" else value
        for name, value in spec.params.items()
    }
    return LossSpec(loss=spec.loss, params=params)


def _restored(predictions: dict[str, Tensor], data: TrialData) -> dict[str, Tensor]:
    """Predictions of a rescaled target (regression) back in target units."""
    if not data.head.kind.rescaled_target:
        return predictions
    shift, scale = data.target_shift, data.target_scale
    restored = dict(predictions)
    for key in ("value", "quantiles"):
        if key in restored:
            restored[key] = restored[key] * scale + shift
    if "variance" in restored:
        restored["variance"] = restored["variance"] * scale**2
    return restored


def scorer(metric: str, data: TrialData) -> Scorer:
    """``score(predictions, rescaled target)`` -> the metric in the user's units."""

    power = data.head.tweedie_power or DEFAULT_TWEEDIE_POWER

    def score(predictions: dict[str, Tensor], target: Tensor) -> float:
        if data.head.kind.rescaled_target:
            target = target * data.target_scale + data.target_shift
        return metrics.score(metric, _restored(predictions, data), target, tweedie_power=power)

    return score


def _model_factory(data: TrialData, config: TrainConfig) -> ModelFactory:
    """The stacked trial net of the head's kind for this data."""
    return trials_for(data.head).model(data, config)


def _class_priors(data: TrialData, train: Tensor) -> Tensor | None:
    """Training label frequencies of one repeat (single-label classification; for logit adjustment)."""
    if not data.head.kind.class_labels:
        return None
    counts = torch.bincount(data.y[train], minlength=data.head.num_classes or 2).tolist()
    return torch.tensor(smoothed_priors(counts), dtype=torch.float64)


@dataclass
class _Record:
    """What one candidate measured so far, by repeat number."""

    values: dict[str, dict[int, float | None]]  # protocol -> repeat -> score-row value
    epochs: dict[str, dict[int, int | None]]
    # protocol -> repeat -> score-row value of each class (metrics with a per-class form, plain members only)
    per_class: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    curves: dict[int, list[float]] = field(default_factory=dict)
    parameters: list[float] = field(default_factory=list)
    diverged: int = 0
    dropped_after: int | None = None

    @property
    def repeats(self) -> list[int]:
        return sorted(next(iter(self.values.values())))

    def _worst(self, repeat: int, higher: bool) -> str | None:
        """The protocol whose value is the repeat's ranking value (the first of equal ones); None when any
        protocol has none."""
        values = {name: by_repeat[repeat] for name, by_repeat in self.values.items()}
        if any(v is None or not math.isfinite(v) for v in values.values()):
            return None
        return (min if higher else max)(values, key=lambda name: values[name])

    def aggregate(self, higher: bool) -> list[float]:
        """Per repeat, the worst protocol's value (NaN when any protocol has none)."""
        worst = [(repeat, self._worst(repeat, higher)) for repeat in self.repeats]
        return [math.nan if name is None else self.values[name][repeat] for repeat, name in worst]

    def classes(self, higher: bool) -> list[list[float] | None]:
        """Per repeat, the per-class values read with the ranking value: the worst protocol's, on the same
        score rows at the same epoch (None where that repeat has no ranking value or no per-class values)."""
        worst = [(repeat, self._worst(repeat, higher)) for repeat in self.repeats]
        return [None if name is None else self.per_class.get(name, {}).get(repeat) for repeat, name in worst]


class _HeadTrials:
    """Rounds of repeats over the live candidates of one head."""

    def __init__(self, candidates: Sequence[Candidate], data: TrialData, options: TrialOptions) -> None:
        self.candidates, self.data, self.options = candidates, data, options
        self.metric = data.head.metric
        self.higher = HIGHER_IS_BETTER[self.metric]
        self.score = scorer(self.metric, data)
        self.log_loss = scorer("log_loss", data)
        self.records = [
            _Record({p.name: {} for p in options.protocols}, {p.name: {} for p in options.protocols})
            for _ in candidates
        ]

    def run_round(
        self, active: list[int], splits: Splits, budget_s: float,
        progress: Callable[[Progress], None] | None, cancel: Callable[[], bool] | None,
    ) -> tuple[str, int, int]:  # fmt: skip
        """Train the active candidates' distinct specs on these repeats; returns (stop reason, epochs,
        member-epochs)."""
        data, options = self.data, self.options
        base: dict[str, int] = {}
        members: list[Member] = []
        adapters: list[Adapter] = []
        for index in active:
            spec = self.candidates[index].spec
            key = spec.to_json()
            if key in base:
                continue
            trained = trial_spec(spec, data)
            adapter = adapter_for(data.head, spec)
            base[key] = len(members)
            members.append(Member(build_loss(trained), adapter, seed_pooling(trained)))
            adapters.append(adapter)
        seeds = tuple(options.seed + r for r in range(splits.first, splits.first + splits.repeats))
        config = TrainConfig(
            seeds=seeds,
            epochs=options.epochs,
            budget_s=budget_s,
            batch_size=options.batch_size or batch_size(data.head.type, splits.train.shape[1]),
            lr=options.lr,
            device=options.device,
        )
        y_tune = [data.y[rows] for rows in splits.tune]

        def select(member: int, repeat: int, output: Tensor) -> float:
            return self.score(adapters[member].predict(output), y_tune[repeat])

        trainer = BatchedTrainer(members, _model_factory(data, config), config)
        run = trainer.fit(
            data.x, data.y, splits, select, higher_is_better=self.higher,
            patience={p.name: p.patience for p in options.protocols}, progress=progress, cancel=cancel,
        )  # fmt: skip
        runs = {(r.candidate, r.repeat): r for r in run.members}
        for index in active:
            member = base[self.candidates[index].spec.to_json()]
            for offset in range(splits.repeats):
                repeat = splits.first + offset
                self._record(index, runs[(member, repeat)], adapters[member], splits, offset)
        member_epochs = sum(len(r.train_loss) for r in run.members)
        return run.stopped_by, run.epochs_completed, member_epochs

    def _record(self, index: int, run: MemberRun, adapter: Adapter, splits: Splits, offset: int) -> None:
        record, candidate, data = self.records[index], self.candidates[index], self.data
        y_val, y_score = data.y[splits.validation[offset]], data.y[splits.score[offset]]
        record.curves[run.repeat] = run.tune_curve
        record.diverged += run.diverged_at_epoch is not None
        recipe = None if candidate.post_hoc is None else recipe_for(candidate.post_hoc)
        priors = None if recipe is None else _class_priors(data, splits.train[offset])
        for protocol in self.options.protocols:
            choice = run.choices.get(protocol.name)
            value: float | None = None
            if choice is not None and choice.output is not None:
                inputs = RecipeInputs(
                    choice.output, adapter, y_val, splits.tune_rows, self.score, self.higher, priors, self.log_loss
                )  # fmt: skip
                if recipe is not None and recipe.applies(inputs):
                    value, parameter = recipe.run(inputs)
                    record.parameters.append(round(parameter, 4))
                else:  # no recipe, or one that does not fit this output: the plain member's value
                    predictions = adapter.predict(choice.output[splits.tune_rows :])
                    value = self.score(predictions, y_score)
                    classes = metrics.score_per_class(self.metric, predictions, y_score)
                    if classes is not None:
                        record.per_class.setdefault(protocol.name, {})[run.repeat] = classes
            record.values[protocol.name][run.repeat] = (
                value if value is None or math.isfinite(value) else None
            )
            record.epochs[protocol.name][run.repeat] = None if choice is None else choice.epoch

    def values(self, index: int) -> RepeatValues:
        return RepeatValues(tuple(self.records[index].aggregate(self.higher)), self.higher)

    def race(self, active: list[int], done: int) -> list[int]:
        """The active candidates that are not clearly behind the leader after ``done`` repeats."""
        values = {i: self.values(i) for i in active}
        leader = max(active, key=lambda i: values[i].oriented())
        kept = []
        for index in active:
            if index == leader or not clearly_behind(values[leader], values[index]):
                kept.append(index)
            else:
                self.records[index].dropped_after = done
        return kept

    def evidence(self, index: int) -> Evidence:
        record, epochs = self.records[index], self.options.epochs
        values = self.values(index)
        interval = values.interval()
        protocols = [
            ProtocolEvidence(
                name=p.name,
                description=p.describe(epochs),
                per_repeat=[record.values[p.name][r] for r in record.repeats],
                mean=RepeatValues(
                    tuple(math.nan if v is None else v for v in record.values[p.name].values()), self.higher
                ).mean,
                epochs=[record.epochs[p.name][r] for r in record.repeats],
            )
            for p in self.options.protocols
        ]
        return Evidence(
            metric=self.metric,
            per_repeat=[v if math.isfinite(v) else None for v in values.values],
            mean=values.mean,
            std=values.std,
            ci_low=interval[0] if interval else None,
            ci_high=interval[1] if interval else None,
            protocols=protocols,
            repeats=len(record.repeats),
            dropped_after=record.dropped_after,
            diverged_repeats=record.diverged,
            curves=[record.curves[r] for r in record.repeats],
            post_hoc_values=record.parameters if self.candidates[index].post_hoc else None,
            per_class=record.classes(self.higher) if metrics.PER_CLASS.get(self.metric) else None,
        )


def _across_rounds(
    progress: Callable[[Progress], None] | None, number: int, rounds: int, epochs: int
) -> Callable[[Progress], None] | None:
    """Progress counted over every round's epochs, so that a bar never moves back at a new round."""
    if progress is None:
        return None
    return lambda p: progress(replace(p, epoch=number * epochs + p.epoch, epochs=rounds * epochs))


def _rounds(total: int) -> list[int]:
    """Repeats per round: FIRST_ROUND, then rounds of the same size; a short remainder joins the last."""
    counts = [min(total, FIRST_ROUND)]
    while sum(counts) < total:
        left = total - sum(counts)
        if left < FIRST_ROUND and len(counts) > 1:
            counts[-1] += left
        else:
            counts.append(min(left, FIRST_ROUND))
    return counts


def evaluate_head(
    candidates: Sequence[Candidate],
    data: TrialData,
    options: TrialOptions,
    *,
    progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> HeadEvidence:
    """Evidence for each candidate of one head (see the module docstring)."""
    started = time.perf_counter()
    trials = _HeadTrials(candidates, data, options)
    total = options.repeats or default_repeats(data.rows)
    active, done, reasons, epochs, member_epochs = list(range(len(candidates))), 0, [], 0, 0
    cut_short: list[int] = []
    rounds = _rounds(total)
    for number, count in enumerate(rounds):
        left = options.budget_s - (time.perf_counter() - started)
        if number and left <= 0:  # the first round always runs (its first epoch is never cut either)
            reasons.append("time")
            cut_short = list(active)
            break
        splits = repeat_splits(data, done, count, options.seed)
        reason, round_epochs, spent = trials.run_round(
            active, splits, left, _across_rounds(progress, number, len(rounds), options.epochs), cancel
        )
        reasons.append(reason)
        epochs, member_epochs, done = max(epochs, round_epochs), member_epochs + spent, done + count
        if reason in ("time", "cancelled"):
            cut_short = list(active) if done < total else []
            break
        if options.race and done < total:
            active = trials.race(active, done)
    stopped = next((r for r in ("cancelled", "time") if r in reasons), None)
    if stopped is None:
        stopped = next((r for r in ("diverged", "early_stopping") if all(x == r for x in reasons)), "epochs")
    return HeadEvidence(
        evidence=[trials.evidence(i) for i in range(len(candidates))],
        stopped_by=stopped,
        epochs_completed=epochs,
        elapsed_s=time.perf_counter() - started,
        train_rows=splits.train.shape[1],
        score_rows=splits.score.shape[1],
        repeats=total,
        member_epochs=member_epochs,
        cut_short=[candidate_name(candidates[i].spec, candidates[i].post_hoc) for i in cut_short],
        synthetic=data.synthetic,
    )
