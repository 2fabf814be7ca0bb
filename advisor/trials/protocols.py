"""Training protocols: how a user trains, so that the evidence can be read the way they will train.

Every protocol is read off the same runs: a run trains for the epoch budget, and each protocol keeps the
epoch it would have stopped at (early stopping with a patience on the tune-row metric), or the best tune
epoch of the whole budget. A user who states how they train (``training=``) gets that protocol alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PATIENCE = 10
DEFAULT_EPOCHS = 50
# The stopping rule is epochs and repeats; the time budget is a cap that should not bind on a normal machine.
DEFAULT_BUDGET_S = 300.0
# Trials train a softmax over every class, (repeats x candidates x classes x batch) entries a step: above this
# a head is ranked by rules alone (a request must say trials=false), so a request's memory and time stay bounded.
MAX_TRIAL_CLASSES = 1_000


class Training(BaseModel):
    """How the user will train, as stated (every field optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int | None = Field(None, ge=1, le=1000, description="Epoch budget (at most 1000).")
    early_stopping_patience: int | None = Field(
        None, ge=1, le=1000, description="Epochs without improvement of the metric before training stops."
    )
    lr: float | None = Field(None, gt=0, le=1.0, description="Learning rate (AdamW).")
    batch_size: int | None = Field(None, ge=1, le=65_536, description="Rows per step.")


@dataclass(frozen=True)
class Protocol:
    """One way of training read off the runs: ``patience`` None keeps the best tune epoch of the budget."""

    name: str
    patience: int | None

    def describe(self, epochs: int) -> str:
        if self.patience is None:
            return f"the best tune epoch of {epochs}"
        return f"early stopping with patience {self.patience} (at most {epochs} epochs)"


BEST_EPOCH = Protocol("best_epoch", None)
DEFAULT_PROTOCOLS = (Protocol("early_stopping", DEFAULT_PATIENCE), BEST_EPOCH)


def protocols_for(training: Training | None, *, early_stopping: bool = True) -> tuple[Protocol, ...]:
    """The stated protocol alone when the user says when they stop (a patience or an epoch budget; without a
    patience, the best tune epoch of that budget), else the defaults: early stopping, and the best epoch of
    the full budget; the best epoch alone for a head type people do not stop early (``early_stopping`` False,
    :attr:`advisor.heads.HeadKind.early_stopping`). A stated learning rate or batch size applies to every
    protocol."""
    if training is None or (training.epochs is None and training.early_stopping_patience is None):
        return DEFAULT_PROTOCOLS if early_stopping else (BEST_EPOCH,)
    return (Protocol("stated", training.early_stopping_patience),)
