"""The advisor's output: ranked, configured losses with their evidence, as JSON-serialisable models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.rules.schema import PostHoc
from advisor.spec import LossSpec
from advisor.task import TaskDescription


def candidate_label(spec: LossSpec, post_hoc: PostHoc | None) -> str:
    """The loss and its post-hoc recipe, e.g. 'cross_entropy + logit adjustment'."""
    return spec.loss + (f" + {post_hoc.kind.replace('_', ' ')}" if post_hoc else "")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProtocolEvidence(_Model):
    """A candidate's score-row metric under one training protocol, per repeat."""

    name: str = Field(description="early_stopping, best_epoch or stated.")
    description: str = Field(description="How this protocol trains, in words.")
    per_repeat: list[float | None] = Field(description="Score-row metric per repeat (null: diverged).")
    mean: float | None = Field(description="Mean over the repeats that did not diverge.")
    epochs: list[int | None] = Field(description="Epoch the protocol kept, per repeat (chosen on tune rows).")


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


class RankedCandidate(_Model):
    """One recommendation: a loss spec ready for ``advisor.build_loss``, why, and how it fared."""

    rank: int = Field(description="1 is the recommendation.")
    head: str = Field(description="Head name, or '*' for a multi_task loss over every head.")
    spec: LossSpec
    post_hoc: PostHoc | None = Field(None, description="Prediction-time recipe to apply with this loss.")
    prior: float = Field(description="Rule prior.")
    score: float = Field(description="Mean metric rescaled over the candidates: 1 best, 0 worst.")
    tie_group: int = Field(description="1: not distinguishable from the best at the repeats run.")
    rule_id: str
    title: str
    rationale: str
    references: list[str]
    evidence: Evidence | None = Field(None, description="Trial evidence; null when ranked by rules alone.")

    @property
    def label(self) -> str:
        return candidate_label(self.spec, self.post_hoc)


class HeadResult(_Model):
    """The ranking for one head."""

    head: str
    type: str
    metric: str
    higher_is_better: bool
    candidates: list[RankedCandidate]
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


class Recommendation(_Model):
    """Ranked configured losses for every head, the task they were chosen for, and how."""

    task: TaskDescription
    heads: list[HeadResult]
    multi_task: list[RankedCandidate] = Field(
        default_factory=list, description="For several heads: multi_task specs over each head's winner."
    )
    settings: Settings
    timings: dict[str, float] = Field(description="Seconds spent per stage.")
    notes: list[str] = Field(default_factory=list)

    def head(self, name: str) -> HeadResult:
        return next(h for h in self.heads if h.head == name)

    def best(self) -> RankedCandidate:
        """The single spec to train with: the multi_task winner for several heads, else the head's winner."""
        return self.multi_task[0] if self.multi_task else self.heads[0].top

    def specs(self) -> dict[str, dict]:
        """Winning spec per head (and '*' for multi_task), ready for ``advisor.build_loss``."""
        found = {h.head: h.top.spec.model_dump() for h in self.heads}
        if self.multi_task:
            found["*"] = self.multi_task[0].spec.model_dump()
        return found
