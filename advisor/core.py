"""``recommend()``: the one orchestration function behind the Python API, the CLI and the service.

input -> task description -> facts -> rules -> candidates -> trials -> ranking -> recommendation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from advisor.errors import AdvisorError, FieldViolation
from advisor.heads import HIGHER_IS_BETTER, METRICS_BY_HEAD
from advisor.losses import build_loss, get_loss_info, normalize_spec
from advisor.ranking import Evidence as SeedValues
from advisor.ranking import rank
from advisor.recommendation import Evidence, HeadResult, RankedCandidate, Recommendation, Settings
from advisor.rules import Candidate, PostHoc, candidates_from, load_rules
from advisor.rules.engine import MULTI_TASK_HEAD
from advisor.spec import LossSpec, violations_from_pydantic
from advisor.task import Head, TaskDescription, parse_task
from advisor.trials import metrics, posthoc
from advisor.trials.adapters import Adapter, adapter_for, seed_pooling
from advisor.trials.data import TrialData, split, synthetic_data
from advisor.trials.trainer import (
    BatchedTrainer,
    Member,
    Progress,
    TrainConfig,
    TrialRun,
    configure_cpu_runtime,
    conv_factory,
    mlp_factory,
)

DEFAULT_BUDGET_S = 15.0
DEFAULT_SEEDS = 3
DEFAULT_EPOCHS = 30
DEFAULT_MAX_ROWS = 20_000
DENSE_BATCH = 16  # images or clips per step: a dense member costs far more per row than a tabular one
MIN_BATCH = 16
MIN_STEPS_PER_EPOCH = 8


class OptionsError(AdvisorError):
    """An option of ``recommend()`` outside what is allowed."""


@dataclass(frozen=True)
class HeadProgress:
    """Progress of one head's trials, for callbacks."""

    head: str
    progress: Progress


def check_options(budget_s: float, seeds: int, epochs: int, max_rows: int, device: str) -> str:
    """Validate ``recommend()``'s numeric options; returns the resolved device (auto -> cuda or cpu)."""
    problems = []
    if not (isinstance(budget_s, int | float) and math.isfinite(budget_s) and budget_s > 0):
        problems.append(FieldViolation("budget_s", f"got {budget_s!r}; a positive number of seconds"))
    if not (isinstance(seeds, int) and 1 <= seeds <= 20):
        problems.append(FieldViolation("seeds", f"got {seeds!r}; an integer from 1 to 20"))
    if not (isinstance(epochs, int) and 1 <= epochs <= 1000):
        problems.append(FieldViolation("epochs", f"got {epochs!r}; an integer from 1 to 1000"))
    if not (isinstance(max_rows, int) and max_rows >= 50):
        problems.append(FieldViolation("max_rows", f"got {max_rows!r}; an integer of at least 50"))
    if device not in ("auto", "cpu", "cuda"):
        problems.append(FieldViolation("device", f"got {device!r}; one of auto, cpu, cuda"))
    elif device == "cuda" and not torch.cuda.is_available():
        problems.append(
            FieldViolation("device", "got 'cuda' but no CUDA device is available; use auto or cpu")
        )
    if problems:
        raise OptionsError(problems)
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def _is_description(value: Any) -> bool:
    if isinstance(value, TaskDescription | Mapping):
        return True
    return isinstance(value, str) and value.lstrip().startswith("{")


def _with_metric(task: TaskDescription, metric: str | Mapping[str, str] | None) -> TaskDescription:
    """The task with the user's metric per head (one name for every head, or a mapping by head name)."""
    if metric is None:
        return task
    wanted = metric if isinstance(metric, Mapping) else {head.name: metric for head in task.heads}
    unknown = sorted(set(wanted) - {h.name for h in task.heads})
    if unknown:
        raise OptionsError(FieldViolation("metric", f"names unknown heads {unknown}"))
    heads = []
    for head in task.heads:
        chosen = wanted.get(head.name, head.metric)
        if chosen not in METRICS_BY_HEAD[head.type]:
            allowed = ", ".join(METRICS_BY_HEAD[head.type])
            raise OptionsError(
                FieldViolation(
                    "metric",
                    f"got {chosen!r}, which does not fit {head.type} head '{head.name}'; allowed: {allowed}",
                )
            )
        heads.append(Head.model_validate({**head.model_dump(), "metric": chosen}))
    return task.model_copy(update={"heads": heads})


def _batch_size(head: Head, train_rows: int) -> int:
    """Rows per step: small data still gets several steps an epoch (a fixed 256 gave 124 rows one step)."""
    if head.type in ("segmentation", "audio"):
        return DENSE_BATCH
    return int(min(TrainConfig.batch_size, max(MIN_BATCH, train_rows // MIN_STEPS_PER_EPOCH)))


TRAIT_FIELDS = ("label_noise", "calibration_needed", "intervals_needed", "outputs_log_probs")


def _with_traits(task: TaskDescription, traits: Mapping[str, Mapping[str, Any]] | None) -> TaskDescription:
    """The task with what the user knows beyond the data (label noise, calibration, intervals) per head name,
    or for every head under ``"*"``."""
    if not traits:
        return task
    names = {head.name for head in task.heads}
    problems = [FieldViolation(f"traits.{name}", f"no head named {name!r}; heads are {sorted(names)}")
                for name in traits if name != "*" and name not in names]  # fmt: skip
    for name, fields in traits.items():
        problems += [FieldViolation(f"traits.{name}.{f}", f"not a trait; traits are {', '.join(TRAIT_FIELDS)}")
                     for f in fields if f not in TRAIT_FIELDS]  # fmt: skip
    if problems:
        raise OptionsError(problems)
    heads = []
    for head in task.heads:
        stated = {**traits.get("*", {}), **traits.get(head.name, {})}
        try:
            heads.append(Head.model_validate({**head.model_dump(), **stated}))
        except ValidationError as exc:
            raise OptionsError(violations_from_pydantic(exc, prefix=f"traits.{head.name}")) from None
    return task.model_copy(update={"heads": heads})


def _trial_spec(spec: LossSpec, data: TrialData) -> LossSpec:
    """The spec as trials train it: parameters in target units rescaled to the standardized target."""
    scale = data.target_scale
    if data.head.type != "regression" or scale == 1.0:
        return spec
    fields = get_loss_info(spec.loss).params_model.model_fields
    params = {
        name: value / scale if (fields[name].json_schema_extra or {}).get("units") == "target" else value
        for name, value in spec.params.items()
    }
    return LossSpec(loss=spec.loss, params=params)


def _unstandardized(predictions: dict[str, torch.Tensor], data: TrialData) -> dict[str, torch.Tensor]:
    if data.head.type != "regression":
        return predictions
    shift, scale = data.target_shift, data.target_scale
    restored = dict(predictions)
    for key in ("value", "quantiles"):
        if key in restored:
            restored[key] = restored[key] * scale + shift
    if "variance" in restored:
        restored["variance"] = restored["variance"] * scale**2
    return restored


def _scorer(metric: str, data: TrialData) -> posthoc.Scorer:
    def score(predictions: dict[str, torch.Tensor], target: torch.Tensor) -> float:
        target = target * data.target_scale + data.target_shift if data.head.type == "regression" else target
        return metrics.score(metric, _unstandardized(predictions, data), target)

    return score


def _model_factory(data: TrialData, config: TrainConfig):
    if data.head.type == "segmentation":
        return conv_factory(2, data.x_train.shape[1], config)
    if data.head.type == "audio":
        return conv_factory(1, data.x_train.shape[1], config, residual=True)
    return mlp_factory(data.x_train.shape[1], config)


@dataclass(frozen=True)
class _HeadTrials:
    data: TrialData
    run: TrialRun
    base_index: dict[str, int]  # spec json -> member index
    adapters: list[Adapter]


def _run_trials(
    head_candidates: list[Candidate], data: TrialData, config: TrainConfig, metric: str,
    progress: Callable[[Progress], None] | None, cancel: Callable[[], bool] | None,
) -> _HeadTrials:  # fmt: skip
    """Train each distinct spec once (post-hoc variants reuse their base member)."""
    base_index: dict[str, int] = {}
    members, adapters = [], []
    for candidate in head_candidates:
        key = candidate.spec.to_json()
        if key in base_index:
            continue
        trial = _trial_spec(candidate.spec, data)
        adapter = adapter_for(data.head, candidate.spec)
        base_index[key] = len(members)
        members.append(Member(build_loss(trial), adapter, seed_pooling(trial)))
        adapters.append(adapter)
    score = _scorer(metric, data)
    tune = data.tune_rows

    def rate(index: int, predictions: dict[str, torch.Tensor]) -> float:
        return score({k: v[tune:] for k, v in predictions.items()}, data.y_score)

    trainer = BatchedTrainer(members, _model_factory(data, config), config)
    run = trainer.fit(
        data.x_train,
        data.y_train,
        data.x_val,
        rate,
        higher_is_better=HIGHER_IS_BETTER[metric],
        progress=progress,
        cancel=cancel,
    )
    return _HeadTrials(data, run, base_index, adapters)


def _evidence(candidate: Candidate, trials: _HeadTrials, metric: str, seeds: Sequence[int]) -> Evidence:
    index = trials.base_index[candidate.spec.to_json()]
    runs = [r for r in trials.run.members if r.candidate == index]
    runs.sort(key=lambda r: seeds.index(r.seed))
    per_seed: list[float | None] = []
    tuned: list[float] = []
    higher = HIGHER_IS_BETTER[metric]
    score, data = _scorer(metric, trials.data), trials.data
    for run in runs:
        if run.best_output is None:
            per_seed.append(None)
            continue
        if candidate.post_hoc is None:
            per_seed.append(run.best_metric)
            continue
        adapter, output = trials.adapters[index], run.best_output
        kind = candidate.post_hoc.kind
        if kind == "logit_adjustment" and data.class_priors is not None and adapter.kind == "softmax":
            grid = posthoc.TAU_GRID if candidate.post_hoc.tau is None else (candidate.post_hoc.tau,)
            value, parameter = posthoc.logit_adjustment(
                output, adapter, data.class_priors, data.tune_rows, data.y_val, score, higher, grid=grid
            )
        elif kind == "threshold" and data.head.type == "binary":
            value, parameter = posthoc.threshold(output, adapter, data.tune_rows, data.y_val, score, higher)
        elif kind == "temperature" and adapter.kind in ("softmax", "sigmoid"):
            value, parameter = posthoc.temperature(
                output, adapter, data.tune_rows, data.y_val, score, _scorer("log_loss", data)
            )
        else:  # the recipe does not apply to this head: the plain member's value
            value, parameter = run.best_metric, math.nan
        per_seed.append(value if value is not None and math.isfinite(value) else None)
        tuned.append(parameter)
    values = SeedValues(tuple(math.nan if v is None else v for v in per_seed), higher)
    interval = values.interval()
    return Evidence(
        metric=metric,
        per_seed=per_seed,
        mean=values.mean,
        std=values.std,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        diverged_seeds=sum(r.diverged_at_epoch is not None for r in runs),
        best_epochs=[r.best_epoch for r in runs],
        curves=[r.curve for r in runs],
        post_hoc_values=[round(t, 4) for t in tuned] if candidate.post_hoc else None,
    )


def _tuned_post_hoc(candidate: Candidate, evidence: Evidence | None) -> PostHoc | None:
    """The post-hoc recipe with a tuned logit-adjustment tau filled in (the median over seeds)."""
    post_hoc = candidate.post_hoc
    tuned = [v for v in (evidence.post_hoc_values or []) if math.isfinite(v)] if evidence is not None else []
    if post_hoc is None or post_hoc.kind != "logit_adjustment" or post_hoc.tau is not None or not tuned:
        return post_hoc
    return post_hoc.model_copy(update={"tau": float(np.median(tuned))})


def _ranked(found: list[Candidate], evidence: list[Evidence] | None, higher: bool) -> list[RankedCandidate]:
    priors = [c.prior for c in found]
    if evidence is None:
        order, groups, scores = (
            sorted(range(len(found)), key=lambda i: (-priors[i], i)),
            [1] * len(found),
            priors,
        )
    else:
        values = [
            SeedValues(tuple(math.nan if v is None else v for v in e.per_seed), higher) for e in evidence
        ]
        order, groups, scores = rank(values, priors)
    return [
        RankedCandidate(
            rank=position + 1,
            head=found[i].head,
            spec=found[i].spec,
            post_hoc=_tuned_post_hoc(found[i], None if evidence is None else evidence[i]),
            prior=found[i].prior,
            score=round(scores[i], 6),
            tie_group=groups[i],
            rule_id=found[i].rule_id,
            title=found[i].title,
            rationale=found[i].rationale,
            references=found[i].references,
            evidence=None if evidence is None else evidence[i],
        )
        for position, i in enumerate(order)
    ]


def _describe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _explain(head: Head, ranked: list[RankedCandidate], source: str, data: TrialData | None) -> str:
    top = ranked[0]
    name = top.label
    if top.evidence is None:
        return (
            f"{name} leads for head '{head.name}' on the rules alone (prior {top.prior:.2f}, rule "
            f"'{top.rule_id}'): {top.rationale}"
        )
    e = top.evidence
    ties = [c for c in ranked[1:] if c.tie_group == 1]
    default = next((c for c in ranked[1:] if "baseline" in c.rule_id and c.post_hoc is None), None)
    parts = [
        f"{name} ranked first for head '{head.name}' on {e.metric}: {_describe(e.mean)} +/- {_describe(e.std)} "
        f"over {len(e.per_seed)} seeds (95% CI {_describe(e.ci_low)} to {_describe(e.ci_high)})."
    ]
    if default is not None and default.evidence is not None and default is not top:
        parts.append(f"The default {default.spec.loss} reached {_describe(default.evidence.mean)}.")
    if ties:
        parts.append(
            f"Not distinguishable from it at these seeds: {', '.join(c.label for c in ties[:4])}; "
            "among those the final score (mostly the metric, partly the rule prior) decided."
        )
    parts.append(f"Why it fits: {top.rationale}")
    where = "synthetic data matching the description" if source == "synthetic" else "your data"
    rows = f" ({len(data.x_train)} training rows)" if data is not None else ""
    parts.append(f"Evidence: quick trial fits on {where}{rows}.")
    return " ".join(parts)


def _load(
    source: Any, target: Any, task_type: str | None, max_rows: int, random_state: int
) -> tuple[TaskDescription, dict[str, tuple[np.ndarray, np.ndarray]] | None]:
    """(task, real data per head or None for a description)."""
    if _is_description(source):
        return parse_task(source), None
    from advisor.profiling import profile_data  # pandas and scikit-learn load only for data input

    if isinstance(source, str | Path) and not Path(source).exists():
        raise OptionsError(FieldViolation("data", f"no such file: {source}"))
    profiled = profile_data(
        source, target=target, task=task_type, max_rows=max(max_rows * 5, 50_000), random_state=random_state
    )
    return profiled.task, {name: (profiled.features, y) for name, y in profiled.targets.items()}


def recommend(
    data_or_task: Any,
    *,
    target: str | Sequence[str] | None = None,
    task: str | None = None,
    metric: str | Mapping[str, str] | None = None,
    traits: Mapping[str, Mapping[str, Any]] | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    seeds: int = DEFAULT_SEEDS,
    epochs: int = DEFAULT_EPOCHS,
    max_rows: int = DEFAULT_MAX_ROWS,
    device: str = "auto",
    trials: bool = True,
    rule_dirs: Sequence[str | Path] | None = None,
    progress: Callable[[HeadProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    random_state: int = 0,
) -> Recommendation:
    """Rank configured losses for a task, proving them with quick trial fits.

    Parameters
    ----------
    data_or_task : TaskDescription, dict, JSON text, CSV path, DataFrame or (X, y)
        A description (trials then run on synthetic data that matches it) or the user's data (profiled, then
        trials run on a stratified sample of it).
    target : str or list of str, optional
        Target column(s) of data; inferred when there is an obvious one.
    task : str, optional
        Force the head type of profiled data (e.g. "ordinal").
    metric : str or mapping, optional
        The metric to rank by (one for every head, or per head name); each head type has a default.
    traits : mapping, optional
        What the data cannot show, per head name (or ``"*"`` for every head): ``label_noise``
        (``{"rate": 0.2, "kind": "symmetric"}``), ``calibration_needed``, ``intervals_needed``,
        ``outputs_log_probs``. Mostly for data input; a description can state them itself.
    budget_s : float
        Wall-clock budget of the trial fits, shared by the heads.
    seeds : int
        Seeds per candidate; the spread over seeds is reported and decides ties.
    epochs : int
        Epoch budget per head. The result says whether epochs or time stopped the trials.
    max_rows : int
        Row budget of the trials (stratified subsample).
    device : {"auto", "cpu", "cuda"}
        "auto" takes CUDA when present.
    trials : bool
        False ranks by rule priors alone, in milliseconds.
    rule_dirs : list of paths, optional
        User rule folders beside the built-in rules.
    progress : callable, optional
        Called after every trial epoch with a :class:`HeadProgress`.
    cancel : callable, optional
        Polled between training steps; returning True stops the trials. Results so far are kept and the
        affected heads say ``stopped_by='cancelled'``.
    random_state : int
        Seed of sampling and splits; the same inputs and seed give the same ranking when epochs (not time)
        stop the trials.

    Returns
    -------
    Recommendation

    Raises
    ------
    AdvisorError
        A bad option, task description, spec or data file; each error names its field.
    """
    started = time.perf_counter()
    resolved_device = check_options(budget_s, seeds, epochs, max_rows, device)
    description, real = _load(data_or_task, target, task, max_rows, random_state)
    description = _with_metric(_with_traits(description, traits), metric)
    timings = {"load": time.perf_counter() - started}
    mark = time.perf_counter()
    found = candidates_from(load_rules(rule_dirs), description)
    timings["rules"] = time.perf_counter() - mark
    if trials and resolved_device == "cpu":
        configure_cpu_runtime()
    seed_list = tuple(range(random_state, random_state + seeds))
    heads: list[HeadResult] = []
    cancelled = False
    for head in description.heads:
        head_candidates = [c for c in found if c.head == head.name]
        higher = HIGHER_IS_BETTER[head.metric]
        if not trials or cancelled or not head_candidates:
            ranked = _ranked(head_candidates, None, higher)
            heads.append(
                HeadResult(
                    head=head.name,
                    type=head.type,
                    metric=head.metric,
                    higher_is_better=higher,
                    candidates=ranked,
                    explanation=_explain(head, ranked, "rules", None),
                    evidence_source="rules",
                )
            )
            continue
        mark = time.perf_counter()
        if real is None:
            data = synthetic_data(head, description, max_rows=max_rows, seed=random_state)
        else:
            x, y = real[head.name]
            data = split(x, y, head, max_rows=max_rows, seed=random_state)
        remaining = max(budget_s - (time.perf_counter() - started) + timings["load"], 1.0)
        config = TrainConfig(
            seeds=seed_list,
            epochs=epochs,
            device=resolved_device,
            batch_size=_batch_size(head, len(data.x_train)),
            budget_s=remaining / (len(description.heads) - len(heads)),
        )
        on_epoch = None if progress is None else (lambda p, name=head.name: progress(HeadProgress(name, p)))
        trials_run = _run_trials(head_candidates, data, config, head.metric, on_epoch, cancel)
        evidence = [_evidence(c, trials_run, head.metric, seed_list) for c in head_candidates]
        ranked = _ranked(head_candidates, evidence, higher)
        source = "synthetic" if data.synthetic else "data"
        heads.append(HeadResult(
            head=head.name, type=head.type, metric=head.metric, higher_is_better=higher, candidates=ranked,
            explanation=_explain(head, ranked, source, data), evidence_source=source,
            stopped_by=trials_run.run.stopped_by, epochs_completed=trials_run.run.epochs_completed,
            trial_seconds=round(trials_run.run.elapsed_s, 3), train_rows=len(data.x_train),
            score_rows=len(data.y_score),
        ))  # fmt: skip
        timings[f"trials:{head.name}"] = time.perf_counter() - mark
        cancelled = trials_run.run.stopped_by == "cancelled"
    notes = list(description.notes)
    if trials and any(h.type == "regression" for h in description.heads):
        notes.append(
            "Regression trials train on a standardized target (parameters in target units, such as Huber's "
            "delta, were rescaled to it); train the same way, especially with a variance output (gaussian_nll, "
            "beta_nll)."
        )
    if cancelled:
        notes.append("Trials were cancelled; heads after the cancelled one are ranked by rules alone.")
    multi = _multi_task(description, heads, found)
    if multi:
        notes.append("multi_task specs combine each head's winner; trial fits train the heads separately.")
    timings["total"] = time.perf_counter() - started
    settings = Settings(
        budget_s=budget_s,
        seeds=seeds,
        epochs=epochs,
        max_rows=max_rows,
        device=resolved_device,
        trials=trials,
        rule_dirs=[str(d) for d in rule_dirs or ()],
    )
    return Recommendation(
        task=description,
        heads=heads,
        multi_task=multi,
        settings=settings,
        timings={k: round(v, 4) for k, v in timings.items()},
        notes=notes,
    )


def _multi_task(
    task: TaskDescription, heads: list[HeadResult], found: list[Candidate]
) -> list[RankedCandidate]:
    """multi_task specs over each head's best plain loss (its rule composes them; evidence is per head)."""
    if len(task.heads) < 2:
        return []
    winners = {}
    for result in heads:
        plain = next((c for c in result.candidates if c.post_hoc is None), None)
        if plain is None:
            return []
        winners[result.head] = plain
    templates = [c for c in found if c.head == MULTI_TASK_HEAD]
    ranked = []
    for position, template in enumerate(templates):
        params = {**template.spec.params, "heads": {n: w.spec.model_dump() for n, w in winners.items()}}
        spec = normalize_spec({"loss": "multi_task", "params": params})
        ranked.append(RankedCandidate(
            rank=position + 1, head=MULTI_TASK_HEAD, spec=spec, prior=template.prior,
            score=template.prior, tie_group=1, rule_id=template.rule_id, title=template.title,
            rationale=template.rationale,
            references=template.references,
        ))  # fmt: skip
    return ranked
