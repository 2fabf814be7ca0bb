"""The advisor's output: ranked, configured losses with their evidence, as JSON-serialisable models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.rules.schema import PostHoc
from advisor.spec import LossSpec
from advisor.task import TaskDescription


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Evidence(_Model):
    """What the trial fits measured for one candidate."""

    metric: str = Field(description="The head's metric.")
    per_seed: list[float | None] = Field(description="Best validation metric of each seed (null: diverged).")
    mean: float | None = Field(description="Mean over the seeds that did not diverge.")
    std: float | None = Field(description="Standard deviation over those seeds.")
    ci_low: float | None = Field(description="Lower end of the 95% t-interval of the mean.")
    ci_high: float | None = Field(description="Upper end of the 95% t-interval of the mean.")
    diverged_seeds: int = Field(description="Seeds whose loss turned NaN or infinite.")
    best_epochs: list[int | None] = Field(description="Epoch of each seed's best validation metric.")
    curves: list[list[float]] = Field(description="Validation metric per epoch, per seed.")
    post_hoc_values: list[float] | None = Field(
        None, description="Tuned tau, threshold or temperature per seed."
    )


class RankedCandidate(_Model):
    """One recommendation: a loss spec ready for ``advisor.build_loss``, why, and how it fared."""

    rank: int = Field(description="1 is the recommendation.")
    head: str = Field(description="Head name, or '*' for a multi_task loss over every head.")
    spec: LossSpec
    post_hoc: PostHoc | None = Field(None, description="Prediction-time recipe to apply with this loss.")
    prior: float = Field(description="Rule prior.")
    score: float = Field(description="Final score: 0.8 x metric rescaled over candidates + 0.2 x prior.")
    tie_group: int = Field(description="1: not distinguishable from the best at the seeds run.")
    rule_id: str
    title: str
    rationale: str
    references: list[str]
    evidence: Evidence | None = Field(None, description="Trial evidence; null when ranked by rules alone.")

    @property
    def label(self) -> str:
        """The loss and its post-hoc recipe, e.g. 'cross_entropy + logit adjustment'."""
        post_hoc = f" + {self.post_hoc.kind.replace('_', ' ')}" if self.post_hoc else ""
        return self.spec.loss + post_hoc


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
    stopped_by: Literal["epochs", "time", "cancelled", "diverged", "not_run"] = "not_run"
    epochs_completed: int = 0
    trial_seconds: float = 0.0
    train_rows: int = 0
    score_rows: int = 0

    @property
    def top(self) -> RankedCandidate:
        return self.candidates[0]


class Settings(_Model):
    """The settings a recommendation was made with."""

    budget_s: float
    seeds: int
    epochs: int
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
