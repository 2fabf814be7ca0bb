"""``recommend()``: the one orchestration function behind the Python API, the CLI and the service.

input -> task description -> facts -> rules -> candidates -> trials -> ranking -> recommendation.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from advisor.cache import ResultCache, cache_key
from advisor.errors import AdvisorError, FieldViolation
from advisor.explain import caveats, explanation, multi_task_summary, multi_task_verdict, verdict
from advisor.heads import HIGHER_IS_BETTER
from advisor.losses import normalize_spec
from advisor.losses.families import LOSS_FAMILIES
from advisor.ranking import RepeatValues, rank
from advisor.recipes import Recipe, smoothed_priors
from advisor.recommendation import (
    Evidence,
    HeadResult,
    JointHeadReference,
    MultiTaskTrials,
    RankedCandidate,
    Recommendation,
    Settings,
)
from advisor.rules import Candidate, candidates_from, load_rules
from advisor.rules.engine import MULTI_TASK_HEAD
from advisor.spec import violations_from_pydantic
from advisor.task import Head, TaskDescription, TaskError, parse_task
from advisor.trials.data import TrialData, prepare, synthetic_data
from advisor.trials.evidence import HeadEvidence, TrialOptions
from advisor.trials.executors import HeadJob, TrialExecutor, executor_for
from advisor.trials.multitask import (
    COMBINED_FORMULA,
    SCHEMES,
    JointEvidence,
    JointHead,
    JointTrialsUnavailable,
    evaluate_joint,
    joint_data,
)
from advisor.trials.protocols import (
    DEFAULT_BUDGET_S,
    DEFAULT_EPOCHS,
    MAX_TRIAL_CLASSES,
    Training,
    protocols_for,
)
from advisor.trials.trainer import Progress, TrainConfig, configure_cpu_runtime

DEFAULT_MAX_ROWS = 20_000


class OptionsError(AdvisorError):
    """An option of ``recommend()`` outside what is allowed."""


@dataclass(frozen=True)
class HeadProgress:
    """Progress of one head's trials, for callbacks."""

    head: str
    progress: Progress


def _integer(value: Any) -> bool:
    """An int that is not a bool (True would otherwise count as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_options(budget_s: float, repeats: int | None, epochs: int, max_rows: int, device: str) -> str:
    """Validate ``recommend()``'s numeric options; returns the resolved device (auto -> cuda or cpu)."""
    problems = []
    if not (_number(budget_s) and budget_s > 0):
        problems.append(FieldViolation("budget_s", f"got {budget_s!r}; a positive number of seconds"))
    if repeats is not None and not (_integer(repeats) and 2 <= repeats <= 30):
        problems.append(
            FieldViolation("repeats", f"got {repeats!r}; an integer from 2 to 30, or None (by rows)")
        )
    if not (_integer(epochs) and 1 <= epochs <= 1000):
        problems.append(FieldViolation("epochs", f"got {epochs!r}; an integer from 1 to 1000"))
    if not (_integer(max_rows) and max_rows >= 50):
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
        if chosen not in head.kind.metrics:
            allowed = ", ".join(head.kind.metrics)
            raise OptionsError(
                FieldViolation(
                    "metric",
                    f"got {chosen!r}, which does not fit {head.type} head '{head.name}'; allowed: {allowed}",
                )
            )
        try:
            heads.append(Head.model_validate({**head.model_dump(), "metric": chosen}))
        except ValidationError as exc:  # e.g. a deviance metric on a target that can be negative
            problems = violations_from_pydantic(exc, prefix="")
            raise OptionsError([FieldViolation("metric", v.description) for v in problems]) from None
    return task.model_copy(update={"heads": heads})


TRAIT_FIELDS = ("label_noise", "calibration_needed", "intervals_needed", "outputs_log_probs", "tweedie_power")


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


def check_trial_heads(task: TaskDescription, *, field: str = "") -> None:
    """Heads with more classes than trials train (:data:`MAX_TRIAL_CLASSES`) are refused when trials run;
    ``field`` prefixes the violations' field paths (``task`` over gRPC)."""
    prefix = f"{field}." if field else ""
    problems = [
        FieldViolation(
            f"{prefix}heads.{index}.num_classes",
            f"{head.num_classes:,} classes; trials train at most {MAX_TRIAL_CLASSES:,} (set trials=false to rank "
            "by rules alone)",
        )
        for index, head in enumerate(task.heads)
        if (head.num_classes or 0) > MAX_TRIAL_CLASSES
    ]
    if problems:
        raise TaskError(problems)


def check_training(training: Training | Mapping[str, Any] | None) -> Training | None:
    """The user's stated training protocol, validated."""
    if training is None or isinstance(training, Training):
        return training
    if not isinstance(training, Mapping):
        raise OptionsError(FieldViolation("training", f"got {type(training).__name__}; a mapping of "
                                          "epochs, early_stopping_patience, lr, batch_size"))  # fmt: skip
    try:
        return Training.model_validate(dict(training))
    except ValidationError as exc:
        raise OptionsError(violations_from_pydantic(exc, prefix="training")) from None


def _recipe(candidate: Candidate, evidence: Evidence | None, head: Head) -> Recipe | None:
    """The candidate's post-hoc recipe with the values it needs at prediction time: the median of what the
    trials tuned (tau, threshold or temperature) and, for logit adjustment, the class priors."""
    post_hoc = candidate.post_hoc
    if post_hoc is None:
        return None
    tuned = [v for v in (evidence.post_hoc_values or []) if math.isfinite(v)] if evidence is not None else []
    value = float(np.median(tuned)) if tuned else None
    found: dict[str, Any] = {
        "kind": post_hoc.kind,
        "tau": post_hoc.tau,
        "activation": "sigmoid" if LOSS_FAMILIES.get(candidate.spec.loss) == "sigmoid" else "softmax",
    }
    if post_hoc.kind == "logit_adjustment":
        found["tau"] = post_hoc.tau if post_hoc.tau is not None else value
        if head.class_histogram:
            found["class_priors"] = smoothed_priors(head.class_histogram)
    else:
        found[post_hoc.kind] = value
    return Recipe.model_validate(found)


def _ranked(
    found: list[Candidate], evidence: list[Evidence] | None, head: Head, higher: bool
) -> list[RankedCandidate]:
    priors = [c.prior for c in found]
    if evidence is None:
        order, groups, scores = (
            sorted(range(len(found)), key=lambda i: (-priors[i], i)),
            [1] * len(found),
            priors,
        )
    else:
        values = [
            RepeatValues(tuple(math.nan if v is None else v for v in e.per_repeat), higher) for e in evidence
        ]
        order, groups, scores = rank(values, priors)
    return [
        RankedCandidate(
            rank=position + 1,
            head=found[i].head,
            spec=found[i].spec,
            post_hoc=_recipe(found[i], None if evidence is None else evidence[i], head),
            prior=found[i].prior,
            score=round(scores[i], 6),
            tie_group=groups[i],
            rule_id=found[i].rule_id,
            also_proposed_by=found[i].also_proposed_by,
            title=found[i].title,
            rationale=found[i].rationale,
            references=found[i].references,
            evidence=None if evidence is None else evidence[i],
        )
        for position, i in enumerate(order)
    ]


def _load(
    source: Any, target: Any, task_type: str | None, max_rows: int, random_state: int,
    sample_rate: int | None = None, label_separator: str | None = None,
) -> tuple[TaskDescription, dict[str, tuple[np.ndarray, np.ndarray]] | None]:  # fmt: skip
    """(task, real data per head or None for a description)."""
    if _is_description(source):
        if sample_rate is not None:
            raise OptionsError(FieldViolation("sample_rate", "goes with audio data; a description states "
                                              "sample_rate in its audio head"))  # fmt: skip
        if label_separator is not None:
            raise OptionsError(FieldViolation("label_separator", "splits a label column of data; a description "
                                              "states a multilabel head's labels itself"))  # fmt: skip
        return parse_task(source), None
    from advisor.profiling import profile_data  # pandas and scikit-learn load only for data input

    if isinstance(source, str | Path) and not Path(source).exists():
        raise OptionsError(FieldViolation("data", f"no such file: {source}"))
    profiled = profile_data(
        source, target=target, task=task_type, max_rows=max(max_rows * 5, 50_000), random_state=random_state,
        sample_rate=sample_rate, label_separator=label_separator,
    )  # fmt: skip
    return profiled.task, {name: (profiled.features, y) for name, y in profiled.targets.items()}


def recommend(
    data_or_task: Any,
    *,
    target: str | Sequence[str] | None = None,
    task: str | None = None,
    sample_rate: int | None = None,
    label_separator: str | None = None,
    metric: str | Mapping[str, str] | None = None,
    traits: Mapping[str, Mapping[str, Any]] | None = None,
    training: Training | Mapping[str, Any] | None = None,
    repeats: int | None = None,
    epochs: int = DEFAULT_EPOCHS,
    budget_s: float = DEFAULT_BUDGET_S,
    race: bool = True,
    max_rows: int = DEFAULT_MAX_ROWS,
    device: str = "auto",
    trials: bool = True,
    rule_dirs: Sequence[str | Path] | None = None,
    progress: Callable[[HeadProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    random_state: int = 0,
    cache: bool | str | Path = True,
    executor: str | TrialExecutor = "local",
    ray_address: str | None = None,
) -> Recommendation:
    """Rank configured losses for a task, proving them with quick trial fits.

    Parameters
    ----------
    data_or_task : TaskDescription, dict, JSON text, CSV path, DataFrame or (X, y)
        A description (trials then run on synthetic data that matches it) or the user's data (profiled, then
        trials run on a stratified sample of it): also images and masks, or audio input and target clips
        (see :func:`advisor.profiling.profile`).
    target : str or list of str, optional
        Target column(s) of data; inferred when there is an obvious one.
    task : str, optional
        Force the head type of profiled data (e.g. "ordinal").
    sample_rate : int, optional
        Audio: the sample rate in Hz of ``(inputs, targets)`` arrays (it marks arrays as audio); files state
        their own.
    label_separator : str, optional
        Tables: the separator of a single text target of label sets (``"|"`` for ``"cat|dog"``), which then
        becomes one multilabel head; by default such a target is recognised and its separator sniffed (see
        :mod:`advisor.profiling`).
    metric : str or mapping, optional
        The metric to rank by (one for every head, or per head name); each head type has a default.
    traits : mapping, optional
        What the data cannot show, per head name (or ``"*"`` for every head): ``label_noise``
        (``{"rate": 0.2, "kind": "symmetric"}``), ``calibration_needed``, ``intervals_needed``,
        ``outputs_log_probs``. Mostly for data input; a description can state them itself.
    training : mapping, optional
        How you will train: ``epochs``, ``early_stopping_patience``, ``lr``, ``batch_size``. With a patience
        or an epoch budget the candidates are ranked under that protocol alone; without, under the worse of
        early stopping (patience 10) and the best epoch of the whole budget (segmentation heads, whose nets
        people train for a fixed budget, under the best epoch alone).
    repeats : int, optional
        Repeats per candidate, each a fresh stratified split with its own initialisation (default by rows:
        10 below 1,000, 6 below 5,000, else 4).
    epochs : int
        Epoch budget of every run (unless ``training`` states one).
    budget_s : float
        Wall-clock cap of the trial fits, shared by the heads. It should not bind: epochs and repeats are the
        stopping rule, so the same input gives the same answer; when it binds, the result says so.
    race : bool
        Drop candidates clearly behind the leader between rounds of repeats.
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
        Seed of sampling, splits and initialisation.
    cache : bool or path
        The result cache (:mod:`advisor.cache`): ``True`` the file ``LOSS_ADVISOR_CACHE`` names (a path, or
        ``off``), else one in the user cache folder; a path that file; ``False`` none. A call with trials and
        the same data content, task, options, rule files and version as a stored one is answered from it in
        milliseconds, with ``result.cache.hit`` and the original ``created_at``. Results whose trials were
        cancelled or cut by the time cap are not stored; calls without trials do not use the cache.
    executor : {"local", "ray"} or executor object
        Where trials run (:mod:`advisor.trials.executors`): ``local`` in this process, one head after another;
        ``ray`` each head as a Ray task, all at once (``pip install 'loss-advisor[ray]'``). Both compute the
        same evidence for the same inputs and seeds.
    ray_address : str, optional
        The Ray cluster to join when this process is not connected yet (``ray.init(address=...)``): None
        starts a local instance or joins ``RAY_ADDRESS``, ``"auto"`` the cluster on this machine.

    Returns
    -------
    Recommendation

    Raises
    ------
    AdvisorError
        A bad option, task description, spec or data file; each error names its field.
    """
    arguments = {"target": target, "task": task, "sample_rate": sample_rate, "label_separator": label_separator,
                 "metric": metric, "traits": traits, "training": training, "repeats": repeats, "epochs": epochs,
                 "budget_s": budget_s, "race": race, "max_rows": max_rows, "device": device, "trials": trials,
                 "rule_dirs": rule_dirs, "random_state": random_state}  # fmt: skip
    # The executor is not part of the cache key: every executor computes the same result.
    run_on = executor_for(executor, ray_address)
    compute = functools.partial(
        _recommend, data_or_task, **arguments, progress=progress, cancel=cancel, run_on=run_on
    )
    store = ResultCache.open(cache) if trials else None  # rules alone take less than a cache look-up
    if store is None:
        return compute()
    key = cache_key(data_or_task, arguments, description=_is_description(data_or_task))
    if key is None:  # an input with no stable fingerprint
        return compute()
    found = store.get(key)
    return found if found is not None else store.put(key, compute())


def _recommend(
    data_or_task: Any, *, target: str | Sequence[str] | None, task: str | None, sample_rate: int | None,
    label_separator: str | None,
    metric: str | Mapping[str, str] | None, traits: Mapping[str, Mapping[str, Any]] | None,
    training: Training | Mapping[str, Any] | None, repeats: int | None, epochs: int, budget_s: float, race: bool,
    max_rows: int, device: str, trials: bool, rule_dirs: Sequence[str | Path] | None,
    progress: Callable[[HeadProgress], None] | None, cancel: Callable[[], bool] | None, random_state: int,
    run_on: TrialExecutor,
) -> Recommendation:  # fmt: skip
    """:func:`recommend` without the result cache."""
    started = time.perf_counter()
    resolved_device = check_options(budget_s, repeats, epochs, max_rows, device)
    stated = check_training(training)
    description, real = _load(
        data_or_task, target, task, max_rows, random_state, sample_rate, label_separator
    )
    description = _with_metric(_with_traits(description, traits), metric)
    if trials:
        check_trial_heads(description)
    timings = {"load": time.perf_counter() - started}
    mark = time.perf_counter()
    found = candidates_from(load_rules(rule_dirs), description)
    timings["rules"] = time.perf_counter() - mark
    if trials and resolved_device == "cpu":
        configure_cpu_runtime()
    options = TrialOptions(
        repeats=repeats,
        epochs=(stated and stated.epochs) or epochs,
        budget_s=budget_s,
        device=resolved_device,
        seed=random_state,
        lr=(stated and stated.lr) or TrainConfig.lr,
        batch_size=stated and stated.batch_size,
        protocols=protocols_for(stated),
        race=race,
    )
    mark = time.perf_counter()
    # Each head is read under the protocols people train its type with (a stated protocol for every head).
    head_options = {
        head.name: replace(options, protocols=protocols_for(stated, early_stopping=head.kind.early_stopping))
        for head in description.heads
    }
    jobs = [
        HeadJob(head.name, [c for c in found if c.head == head.name],
                _trial_data(head, description, real, max_rows, random_state), head_options[head.name])
        for head in description.heads
        if trials and any(c.head == head.name for c in found)
    ]  # fmt: skip
    timings["data"] = time.perf_counter() - mark
    mark = time.perf_counter()
    on_epoch = None if progress is None else (lambda name, p: progress(HeadProgress(name, p)))
    trial_budget = max(budget_s - (time.perf_counter() - started) + timings["load"], 1.0)
    measured_by_head = dict(
        zip([job.head for job in jobs], run_on.evaluate(jobs, trial_budget, progress=on_epoch, cancel=cancel),
            strict=True)
    )  # fmt: skip
    timings["trials"] = time.perf_counter() - mark
    heads = [
        _head_result(head, found, measured_by_head.get(head.name), head_options[head.name])
        for head in description.heads
    ]
    cancelled = any(h.stopped_by == "cancelled" for h in heads)
    notes = list(description.notes)
    if any(h.cut_short for h in heads):
        notes.append(
            "The time cap (budget_s) bound before every planned repeat ran: the evidence is cut short and the "
            "same input may rank differently on another machine. Raise budget_s or lower max_rows."
        )
    if trials and any(h.kind.rescaled_target for h in description.heads):
        notes.append(
            "Regression trials train on a rescaled target (divided by its standard deviation, and centred "
            "unless it is non-negative; parameters in target units, such as Huber's delta, were rescaled to "
            "it); train the same way, especially with a variance output (gaussian_nll, beta_nll)."
        )
    if cancelled:
        notes.append("Trials were cancelled; heads whose trials had not started are ranked by rules alone.")
    mark = time.perf_counter()
    joint_budget = budget_s - (mark - started) + timings["load"]  # what the head trials left of the cap
    multi, multi_note, joint = _multi_task(
        description, heads, found, real=real, trials=trials,
        options=replace(options, budget_s=joint_budget), max_rows=max_rows, seed=random_state, progress=progress,
        cancel=cancel,
    )  # fmt: skip
    timings["multi_task"] = time.perf_counter() - mark
    if multi:
        notes.append(multi_note)
    timings["total"] = time.perf_counter() - started
    settings = Settings(
        budget_s=budget_s,
        repeats=repeats,
        epochs=options.epochs,
        training=None if stated is None else stated.model_dump(exclude_none=True),
        race=race,
        max_rows=max_rows,
        device=resolved_device,
        trials=trials,
        rule_dirs=[str(d) for d in rule_dirs or ()],
    )
    return Recommendation(
        task=description,
        heads=heads,
        multi_task=multi,
        multi_task_trials=joint,
        settings=settings,
        timings={k: round(v, 4) for k, v in timings.items()},
        notes=notes,
    )


def _head_result(
    head: Head, found: list[Candidate], measured: HeadEvidence | None, options: TrialOptions
) -> HeadResult:
    """One head's ranking: by its trials' evidence, or by rule priors when it had no trials."""
    head_candidates = [c for c in found if c.head == head.name]
    higher = HIGHER_IS_BETTER[head.metric]
    if measured is None:
        ranked = _ranked(head_candidates, None, head, higher)
        return HeadResult(
            head=head.name, type=head.type, metric=head.metric, higher_is_better=higher, candidates=ranked,
            verdict=verdict(ranked, head.metric, higher), caveats=caveats("rules", None, options.epochs),
            explanation=explanation(head.name, ranked, "rules", None), evidence_source="rules",
        )  # fmt: skip
    ranked = _ranked(head_candidates, measured.evidence, head, higher)
    source = "synthetic" if measured.synthetic else "data"
    return HeadResult(
        head=head.name, type=head.type, metric=head.metric, higher_is_better=higher, candidates=ranked,
        verdict=verdict(ranked, head.metric, higher), caveats=caveats(source, measured, options.epochs),
        explanation=explanation(head.name, ranked, source, measured), evidence_source=source,
        stopped_by=measured.stopped_by, epochs_completed=measured.epochs_completed,
        trial_seconds=round(measured.elapsed_s, 3), train_rows=measured.train_rows,
        score_rows=measured.score_rows, repeats=measured.repeats,
        protocols=[p.describe(options.epochs) for p in options.protocols],
        member_epochs=measured.member_epochs, cut_short=measured.cut_short,
    )  # fmt: skip


def _trial_data(
    head: Head, task: TaskDescription, real: dict[str, tuple[np.ndarray, np.ndarray]] | None, max_rows: int,
    seed: int,
) -> TrialData:  # fmt: skip
    if real is None:
        return synthetic_data(head, task, max_rows=max_rows, seed=seed)
    x, y = real[head.name]
    if x.shape[1] == 0:  # every column was the target, dropped or constant: the notes say which
        from advisor.profiling import ProfileError  # loaded already: the data was profiled

        raise ProfileError(
            FieldViolation(
                "data",
                "no usable feature column (see the profile's notes for what was dropped); trials need at least "
                "one: add features, or pass trials=False to rank by rules alone",
            )
        )
    return prepare(x, y, head, max_rows=max_rows, seed=seed)


def _multi_task(
    task: TaskDescription, heads: list[HeadResult], found: list[Candidate], *,
    real: dict[str, tuple[np.ndarray, np.ndarray]] | None, trials: bool, options: TrialOptions, max_rows: int,
    seed: int, progress: Callable[[HeadProgress], None] | None, cancel: Callable[[], bool] | None,
) -> tuple[list[RankedCandidate], str, MultiTaskTrials | None]:  # fmt: skip
    """multi_task specs over each head's best plain loss, the note that says how they were ranked, and the joint
    trials' account.

    With trials on data whose heads share their rows, joint trials (:mod:`advisor.trials.multitask`) train the
    heads together under each weighting scheme, and the schemes are ranked by the combined score, their order
    (the rules' templates first, as the rules order them) settling ties. Otherwise the rules' templates, in
    their order, with evidence per head only.
    """
    if len(task.heads) < 2:
        return [], "", None
    winners = {}
    for result in heads:
        plain = next((c for c in result.candidates if c.post_hoc is None), None)
        if plain is None:
            return [], "", None
        winners[result.head] = plain
    templates = [c for c in found if c.head == MULTI_TASK_HEAD]
    if not templates:
        return [], "", None
    try:
        if not trials:
            raise JointTrialsUnavailable("no trials ran")
        measured = _joint_evidence(task, heads, winners, real, options, max_rows, seed, progress, cancel)
    except JointTrialsUnavailable as exc:
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
        note = (
            f"multi_task specs combine each head's winner, in the rules' order; the heads were not trained "
            f"together ({exc})."
        )
        return ranked, note, None
    return _joint_ranking(templates, winners, measured, options)


def _joint_evidence(
    task: TaskDescription, heads: list[HeadResult], winners: dict[str, RankedCandidate],
    real: dict[str, tuple[np.ndarray, np.ndarray]] | None, options: TrialOptions, max_rows: int, seed: int,
    progress: Callable[[HeadProgress], None] | None, cancel: Callable[[], bool] | None,
) -> JointEvidence:  # fmt: skip
    """The joint trials of every weighting scheme; raises JointTrialsUnavailable with the reason they cannot
    run."""
    if any(h.stopped_by == "cancelled" for h in heads):
        raise JointTrialsUnavailable("the trials were cancelled")
    if options.budget_s <= 0:
        raise JointTrialsUnavailable("the single-head trials spent the time cap, budget_s")
    datas = joint_data(task, real, max_rows=max_rows, seed=seed)
    single: dict[str, tuple[float, tuple[float, float] | None]] = {}  # the winner's mean and its interval
    for name, winner in winners.items():
        e = winner.evidence
        if e is not None and e.mean is not None:
            single[name] = (e.mean, None if e.ci_low is None or e.ci_high is None else (e.ci_low, e.ci_high))
    unmeasured = [n for n in winners if n not in single]
    if unmeasured:
        raise JointTrialsUnavailable(f"no single-head result for the winner of {', '.join(unmeasured)}")
    joint = [JointHead(data, winners[data.head.name].spec, *single[data.head.name]) for data in datas]
    on_epoch = None if progress is None else (lambda p: progress(HeadProgress(MULTI_TASK_HEAD, p)))
    return evaluate_joint(joint, options, progress=on_epoch, cancel=cancel)


def _joint_ranking(
    templates: list[Candidate],
    winners: dict[str, RankedCandidate],
    measured: JointEvidence,
    options: TrialOptions,
) -> tuple[list[RankedCandidate], str, MultiTaskTrials]:
    """The schemes ranked by their combined score, each with its evidence and the head it favours."""
    heads = {n: w.spec.model_dump() for n, w in winners.items()}
    by_scheme = {t.spec.params["weighting"]["scheme"]: t for t in templates}
    prior = min(t.prior for t in templates)
    found = []
    for scheme, weighting in zip(measured.schemes, measured.weightings, strict=True):
        template = None if scheme.inverse_initial else by_scheme.get(scheme.weighting["scheme"])
        spec = normalize_spec({"loss": "multi_task", "params": {"heads": heads, "weighting": weighting}})
        if template is not None:
            found.append(template.model_copy(update={"spec": spec}))
        else:
            found.append(Candidate(
                head=MULTI_TASK_HEAD, spec=spec, prior=prior, rule_id=f"multi-task-{scheme.name.replace('_', '-')}",
                title=scheme.title, rationale=scheme.rationale, references=list(scheme.references),
            ))  # fmt: skip
    values = [
        RepeatValues(tuple(math.nan if v is None else v for v in e.per_repeat), True)
        for e in measured.evidence
    ]
    # Ties go to the earlier scheme: the rules' templates in their order, then the derived schemes.
    order, groups, scores = rank(values, [-float(i) for i in range(len(found))])
    labels = {c.rule_id: s.label for c, s in zip(found, measured.schemes, strict=True)}
    ranked = [
        RankedCandidate(
            rank=position + 1, head=MULTI_TASK_HEAD, spec=found[i].spec, prior=found[i].prior,
            score=round(scores[i], 6), tie_group=groups[i], rule_id=found[i].rule_id, title=found[i].title,
            rationale=found[i].rationale, references=found[i].references, evidence=measured.evidence[i],
        )
        for position, i in enumerate(order)
    ]  # fmt: skip
    # Static equal weights are the baseline every other scheme is compared with (Kurin et al. 2022).
    baseline_id = next(
        (c.rule_id for c, s in zip(found, measured.schemes, strict=True) if s is SCHEMES[0]), None
    )
    baseline = next((c for c in ranked if c.rule_id == baseline_id), None)
    ranked = [
        c.model_copy(update={"summary": multi_task_summary(labels[c.rule_id], c, SCHEMES[0].label, baseline)})
        for c in ranked
    ]
    baseline = next((c for c in ranked if c.rule_id == baseline_id), None)
    note = (
        f"The heads were trained together: joint trials trained a shared-trunk model per weighting scheme "
        f"({', '.join(s.label for s in measured.schemes)}) on {measured.repeats} paired repeats of "
        f"{measured.train_rows} training rows; the schemes are ranked by the combined score (the mean over heads "
        "of (m - c) / (b - c), m the head's metric, c its chance level, b its winner's single-head result: 1 is "
        "as good as each head alone, 0 chance)."
    )
    left_out = [r.head for r in measured.references if not r.counted]
    if left_out:
        note += (
            f" Left out of the combined score, as their own winner did not clearly beat chance (95% interval): "
            f"{', '.join(left_out)}."
        )
    if measured.stopped_by in ("time", "cancelled"):
        cause = "the time cap (budget_s) bound" if measured.stopped_by == "time" else "they were cancelled"
        note += (
            f" The joint trials stopped after {measured.epochs_completed} of {options.epochs} epochs because "
            f"{cause}: their evidence is partial."
        )
    if measured.skipped:
        note += f" Not run: {'; '.join(measured.skipped)}."
    trials = MultiTaskTrials(
        verdict=multi_task_verdict(ranked, labels, baseline),
        combined=COMBINED_FORMULA,
        heads=[
            JointHeadReference(
                head=r.head,
                metric=r.metric,
                higher_is_better=HIGHER_IS_BETTER[r.metric],
                chance=r.chance,
                single_head=r.single_head,
                in_combined=r.counted,
            )
            for r in measured.references
        ],
        stopped_by=measured.stopped_by,
        epochs_completed=measured.epochs_completed,
        trial_seconds=round(measured.elapsed_s, 3),
        train_rows=measured.train_rows,
        score_rows=measured.score_rows,
        repeats=measured.repeats,
        member_epochs=measured.member_epochs,
        protocols=[p.describe(options.epochs) for p in options.protocols],
        skipped=measured.skipped,
    )
    return ranked, note, trials
