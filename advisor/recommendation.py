"""The advisor's output: ranked, configured losses with their evidence, as JSON-serialisable models."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor._text import shorten
from advisor.errors import AdvisorError
from advisor.recipes import Recipe
from advisor.rules.schema import PostHoc
from advisor.spec import LossSpec
from advisor.task import TaskDescription


def candidate_label(spec: LossSpec, post_hoc: PostHoc | None) -> str:
    """The loss and its post-hoc recipe, e.g. 'cross_entropy + logit adjustment'."""
    return spec.loss + (f" + {post_hoc.kind.replace('_', ' ')}" if post_hoc else "")


def _compact(value: Any) -> str:
    """A parameter value for a table cell: 3 significant digits, one-entry lists unwrapped."""
    if isinstance(value, float):
        text = f"{value:.3g}"
        # 0.9996 must not read as 1: a rounded integer that is not the value gets more digits
        return f"{value:.6g}" if float(text) == round(value) != value else text
    if isinstance(value, list):
        if len(value) == 1:
            return _compact(value[0])
        shown = ",".join(_compact(v) for v in value[:3])
        return f"[{shown}{',...' if len(value) > 3 else ''}]"
    return json.dumps(value)


def key_params(spec: LossSpec, *, limit: int | None = None, compact: bool = False) -> str:
    """The parameters of ``spec`` that differ from the loss's defaults, as ``name=value`` text (``compact``:
    short numbers, space-separated, for tables).

    A ``multi_task`` spec reads as its weighting scheme and each head's loss.
    """
    show = _compact if compact else json.dumps
    if spec.loss == "multi_task":
        weighting = dict(spec.params.get("weighting") or {})
        scheme = weighting.pop("scheme", "static")
        extra = ", ".join(f"{k}={show(v)}" for k, v in weighting.items() if v is not None)
        heads = ", ".join(
            f"{name}: {head.get('loss')}" for name, head in spec.params.get("heads", {}).items()
        )
        text = (
            f"weighting={scheme}" + (f" ({extra})" if extra else "") + (f"; heads {heads}" if heads else "")
        )
    else:
        defaults = _defaults(spec)
        changed = {k: v for k, v in spec.params.items() if k not in defaults or defaults[k] != v}
        text = (" " if compact else ", ").join(f"{k}={show(v)}" for k, v in changed.items())
    return text if limit is None else shorten(text, limit)


def _defaults(spec: LossSpec) -> dict[str, Any]:
    """The loss's parameters with only the required ones taken from ``spec`` (the rest at their defaults)."""
    from advisor.losses import get_loss_info, normalize_spec

    try:
        model = get_loss_info(spec.loss).params_model
        required = {n: spec.params[n] for n, f in model.model_fields.items() if f.is_required()}
        return dict(normalize_spec({"loss": spec.loss, "params": required}).params)
    except AdvisorError:  # an unregistered loss (a plugin not installed here): show every parameter
        return {}


def candidate_name(spec: LossSpec, post_hoc: PostHoc | None) -> str:
    """The label with the parameters that set it apart, e.g. 'bce pos_weight=7.4'."""
    params = key_params(spec, compact=True, limit=40)
    label = candidate_label(spec, post_hoc)
    return f"{label} {params}" if params else label


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class LossChoice(_Model):
    """A loss to train with and the prediction-time recipe that goes with it (``None``: predict plainly).

    This is what travels wherever a recommendation is handed on (``--out`` files, ``top_choices``, Optuna
    choices): a spec alone would drop the recipe its evidence was measured with.
    """

    spec: LossSpec
    recipe: Recipe | None = None

    @property
    def label(self) -> str:
        return candidate_label(self.spec, self.recipe)

    def build_loss(self) -> Any:
        """``advisor.build_loss(self.spec)``: the loss module to train with."""
        from advisor.losses import build_loss

        return build_loss(self.spec)


class ProtocolEvidence(_Model):
    """A candidate's score-row metric under one training protocol, per repeat."""

    name: str = Field(description="early_stopping, best_epoch or stated.")
    description: str = Field(description="How this protocol trains, in words.")
    per_repeat: list[float | None] = Field(description="Score-row metric per repeat (null: diverged).")
    mean: float | None = Field(description="Mean over the repeats that did not diverge.")
    epochs: list[int | None] = Field(description="Epoch the protocol kept, per repeat (chosen on tune rows).")


class HeadShare(_Model):
    """One head's score-row metric inside a multi_task candidate's joint trials (the heads trained together)."""

    head: str
    metric: str = Field(description="The head's metric.")
    higher_is_better: bool
    per_repeat: list[float | None] = Field(
        description="The head's metric per repeat, at the epoch of the repeat's combined score (null: none)."
    )
    mean: float | None = Field(description="Mean of per_repeat.")
    share: float | None = Field(
        description="Mean over repeats of (m - c) / (b - c): the part of the head's single-head gain over chance "
        "that the joint model keeps (1: as good as trained alone, 0: chance); null for a head left out of the "
        "combined score (its own winner did not clearly beat chance)."
    )


class Evidence(_Model):
    """What the trial fits measured for one candidate.

    Each repeat is a fresh stratified split with its own initialisation, so the spread covers split noise.
    Epochs and post-hoc parameters were chosen on tune rows; every value here is read on score rows.
    """

    metric: str = Field(description="The head's metric.")
    per_repeat: list[float | None] = Field(
        description="Ranking value per repeat: the worst of the protocols' score-row metrics (null: diverged)."
    )
    mean: float | None = Field(description="Mean of per_repeat over the repeats that did not diverge.")
    std: float | None = Field(description="Standard deviation over those repeats.")
    ci_low: float | None = Field(description="Lower end of the 95% t-interval of the mean.")
    ci_high: float | None = Field(description="Upper end of the 95% t-interval of the mean.")
    protocols: list[ProtocolEvidence] = Field(description="The same runs read under each training protocol.")
    repeats: int = Field(description="Repeats this candidate trained (fewer when racing dropped it).")
    dropped_after: int | None = Field(
        None, description="Racing dropped it after this many repeats: clearly behind the leader."
    )
    diverged_repeats: int = Field(description="Repeats whose loss turned NaN or infinite.")
    curves: list[list[float]] = Field(description="Tune-row metric per epoch, per repeat.")
    post_hoc_values: list[float] | None = Field(
        None, description="Tuned tau, threshold or temperature per repeat and protocol."
    )
    per_head: list[HeadShare] | None = Field(
        None,
        description="multi_task candidates measured by joint trials (metric 'combined_score'): each head's "
        "metric; null otherwise.",
    )
    per_class: list[list[float] | None] | None = Field(
        None,
        description="Per repeat, the score-row metric of each class, whose mean is that repeat's ranking value "
        "(the same protocol, epoch and rows): Dice or IoU of the foreground classes 1..C-1, or of every channel "
        "when the classes overlap; null for a repeat without a value, and null for metrics without a per-class "
        "form (all but dice and iou).",
    )

    @property
    def per_class_mean(self) -> list[float] | None:
        """Each class's mean over the repeats that have per-class values (None without any)."""
        rows = [values for values in self.per_class or [] if values is not None]
        return [sum(column) / len(rows) for column in zip(*rows, strict=True)] if rows else None


class RankedCandidate(_Model):
    """One recommendation: a loss spec ready for ``advisor.build_loss``, why, and how it fared."""

    rank: int = Field(description="1 is the recommendation.")
    head: str = Field(description="Head name, or '*' for a multi_task loss over every head.")
    spec: LossSpec
    post_hoc: Recipe | None = Field(
        None,
        description="Prediction-time recipe to apply with this loss, with its tuned values "
        "(advisor.apply_recipe).",
    )
    prior: float = Field(description="Rule prior.")
    score: float = Field(description="Mean metric rescaled over the candidates: 1 best, 0 worst.")
    tie_group: int = Field(description="1: not distinguishable from the best at the repeats run.")
    rule_id: str
    also_proposed_by: list[str] = Field(
        default_factory=list, description="Other rules that proposed the same loss (and recipe)."
    )
    title: str
    rationale: str
    references: list[str]
    evidence: Evidence | None = Field(None, description="Trial evidence; null when ranked by rules alone.")
    summary: str | None = Field(
        None, description="multi_task candidates measured by joint trials: which head the weighting favours."
    )

    @property
    def label(self) -> str:
        return candidate_label(self.spec, self.post_hoc)

    @property
    def name(self) -> str:
        """The label with the parameters that set it apart, e.g. 'bce pos_weight=7.4'."""
        return candidate_name(self.spec, self.post_hoc)

    def choice(self) -> LossChoice:
        """What to train and predict with: the spec and its prediction-time recipe."""
        return LossChoice(spec=self.spec, recipe=self.post_hoc)


class HeadResult(_Model):
    """The ranking for one head."""

    head: str
    type: str
    metric: str
    higher_is_better: bool
    candidates: list[RankedCandidate]
    verdict: str = Field(
        "",
        description="The answer in one sentence: who wins and by how much, or which candidates tie and "
        "whether the head type's default loss is among them.",
    )
    caveats: list[str] = Field(
        default_factory=list,
        description="What limits the evidence: synthetic data, a time cap that cut epochs or repeats, rules "
        "alone.",
    )
    explanation: str
    evidence_source: Literal["data", "synthetic", "rules"] = Field(
        description="Trials on the user's data, on synthetic data matching the description, or none."
    )
    stopped_by: Literal["epochs", "early_stopping", "time", "cancelled", "diverged", "not_run"] = Field(
        "not_run",
        description="What ended the trials: the epoch budget, every protocol's early stop, the time cap "
        "(the evidence is then cut short), a cancel, divergence of every member, or no trials.",
    )
    epochs_completed: int = Field(0, description="Most epochs any round trained.")
    trial_seconds: float = 0.0
    train_rows: int = 0
    score_rows: int = 0
    repeats: int = Field(
        0, description="Repeats planned per candidate (fresh split and initialisation each)."
    )
    protocols: list[str] = Field(default_factory=list, description="The training protocols, in words.")
    member_epochs: int = Field(0, description="Epochs trained summed over every member: the compute spent.")
    cut_short: list[str] = Field(
        default_factory=list,
        description="Candidates that got fewer repeats because the time cap bound (not because racing "
        "dropped them).",
    )

    @property
    def top(self) -> RankedCandidate:
        return self.candidates[0]


class Settings(_Model):
    """The settings a recommendation was made with."""

    budget_s: float
    repeats: int | None
    epochs: int
    training: dict | None = None
    race: bool = True
    max_rows: int
    device: str
    trials: bool
    rule_dirs: list[str]


class CacheInfo(_Model):
    """Whether a recommendation came from the result cache (:mod:`advisor.cache`), and when it was computed."""

    hit: bool = Field(description="True: served from the cache, computed earlier (at created_at), not now.")
    key: str = Field(description="The cache key: sha256 of the data content, task, options, rules, versions.")
    created_at: datetime = Field(description="When the result was computed (UTC).")
    stored: bool = Field(
        description="Whether the result is in the cache (trials cancelled or cut by the time cap are not)."
    )
    path: str | None = Field(None, description="The cache file (not sent over gRPC).")


class JointHeadReference(_Model):
    """The constants that normalise one head in the joint trials' combined score."""

    head: str
    metric: str
    higher_is_better: bool
    chance: float = Field(description="c: the metric of a feature-blind prediction on the trial rows.")
    single_head: float = Field(description="b: the mean of the head's own winner in its single-head trials.")
    in_combined: bool = Field(
        description="Whether the head's single-head 95% interval lies on the better side of c, so that the head "
        "is part of the combined score."
    )


class MultiTaskTrials(_Model):
    """How the multi_task candidates were measured when the heads were trained together (joint trials)."""

    verdict: str = Field(description="The answer in one sentence, as a head's verdict.")
    combined: str = Field(description="The combined score's formula, in words.")
    heads: list[JointHeadReference]
    stopped_by: Literal["epochs", "early_stopping", "time", "cancelled", "diverged"]
    epochs_completed: int
    trial_seconds: float
    train_rows: int
    score_rows: int
    repeats: int
    member_epochs: int
    protocols: list[str] = Field(description="The training protocols, in words.")
    skipped: list[str] = Field(
        default_factory=list, description="Weighting schemes that could not run, and why."
    )


class Recommendation(_Model):
    """Ranked configured losses for every head, the task they were chosen for, and how."""

    task: TaskDescription
    heads: list[HeadResult]
    multi_task: list[RankedCandidate] = Field(
        default_factory=list, description="For several heads: multi_task specs over each head's winner."
    )
    multi_task_trials: MultiTaskTrials | None = Field(
        None,
        description="Set when the multi_task candidates were ranked by joint trials (the heads trained "
        "together); null when they are in the rules' order.",
    )
    settings: Settings
    timings: dict[str, float] = Field(description="Seconds spent per stage.")
    notes: list[str] = Field(default_factory=list)
    cache: CacheInfo | None = Field(
        None, description="Set when a result cache was consulted: a hit, or whether this result was stored."
    )

    def head(self, name: str) -> HeadResult:
        return next(h for h in self.heads if h.head == name)

    def best(self) -> RankedCandidate:
        """The single spec to train with: the multi_task winner for several heads, else the head's winner."""
        return self.multi_task[0] if self.multi_task else self.heads[0].top

    def specs(self) -> dict[str, dict]:
        """Winning spec per head (and '*' for multi_task), ready for ``advisor.build_loss``."""
        return {name: choice.spec.model_dump() for name, choice in self.choices().items()}

    def choices(self) -> dict[str, LossChoice]:
        """Per head (and '*' for multi_task) the winner's spec and prediction-time recipe: the spec for
        ``advisor.build_loss``, the recipe for ``advisor.apply_recipe``."""
        found = {h.head: h.top.choice() for h in self.heads}
        if self.multi_task:
            found["*"] = self.multi_task[0].choice()
        return found
