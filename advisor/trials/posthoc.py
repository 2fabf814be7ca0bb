"""Post-hoc recipes tuned on the tune rows and scored on the score rows of a trained member's outputs.

- logit adjustment: predict argmax(z - tau log pi), pi the training class frequencies, tau in [0, 2];
- decision threshold (binary): predict positive above t, t tuned for the metric;
- temperature: divide logits by T fitted for log-loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from advisor.rules.schema import PostHoc
from advisor.trials.adapters import Adapter

Scorer = Callable[[dict[str, Tensor], Tensor], float]
TAU_GRID = tuple(np.round(np.linspace(0.0, 2.0, 9), 3))
TEMPERATURE_GRID = tuple(np.round(np.logspace(-1.0, 1.0, 25), 4))


def _pick(values: list[float], higher_is_better: bool) -> int:
    finite = [(v if higher_is_better else -v, i) for i, v in enumerate(values) if math.isfinite(v)]
    return max(finite)[1] if finite else 0


def _tuned(
    candidates: tuple[float, ...],
    transform: Callable[[float], Tensor],
    adapter: Adapter,
    tune_rows: int,
    tune_score: Scorer,
    final_score: Scorer,
    y_val: Tensor,
    higher_is_better: bool,
) -> tuple[float, float]:
    """Choose the parameter on the tune rows, then score it on the score rows."""
    tune_values = [
        tune_score(adapter.predict(transform(p)[:tune_rows]), y_val[:tune_rows]) for p in candidates
    ]
    best = candidates[_pick(tune_values, higher_is_better)]
    return final_score(adapter.predict(transform(best)[tune_rows:]), y_val[tune_rows:]), float(best)


def logit_adjustment(
    output: Tensor, adapter: Adapter, priors: Tensor, tune_rows: int, y_val: Tensor, score: Scorer, higher: bool,
    *, grid: tuple[float, ...] = TAU_GRID,
) -> tuple[float, float]:  # fmt: skip
    """Tune tau over ``grid`` (one value: fixed) for argmax(z - tau log pi); returns (score, tau)."""
    log_prior = torch.log(priors).to(output.dtype)
    return _tuned(grid, lambda tau: output - tau * log_prior, adapter, tune_rows, score, score, y_val, higher)


def _positive_logit(output: Tensor, adapter: Adapter) -> Tensor:
    return output[:, 0] if adapter.kind == "sigmoid" else output[:, 1] - output[:, 0]


def _with_positive_logit(logit: Tensor, adapter: Adapter) -> Tensor:
    if adapter.kind == "sigmoid":
        return logit[:, None]
    return torch.stack([torch.zeros_like(logit), logit], dim=1)


def threshold(
    output: Tensor, adapter: Adapter, tune_rows: int, y_val: Tensor, score: Scorer, higher: bool
) -> tuple[float, float]:
    """Tune the probability threshold of a binary head; returns (score, threshold)."""
    logit = _positive_logit(output, adapter)
    levels = np.unique(np.quantile(torch.sigmoid(logit[:tune_rows]).numpy(), np.linspace(0.02, 0.98, 49)))
    grid = tuple(float(np.clip(t, 1e-6, 1 - 1e-6)) for t in levels)

    def shifted(t: float) -> Tensor:
        return _with_positive_logit(logit - math.log(t / (1 - t)), adapter)

    return _tuned(grid, shifted, adapter, tune_rows, score, score, y_val, higher)


def temperature(
    output: Tensor, adapter: Adapter, tune_rows: int, y_val: Tensor, score: Scorer, log_loss: Scorer
) -> tuple[float, float]:
    """Fit T for log-loss on the tune rows; returns (the metric on the score rows, T)."""
    return _tuned(TEMPERATURE_GRID, lambda t: output / t, adapter, tune_rows, log_loss, score, y_val, False)


@dataclass(frozen=True)
class RecipeInputs:
    """One member's raw validation output (tune rows first) and what a recipe needs to tune and score it."""

    output: Tensor
    adapter: Adapter
    y_val: Tensor
    tune_rows: int
    score: Scorer
    higher_is_better: bool
    class_priors: Tensor | None  # training class frequencies of this repeat (single-label classification)
    log_loss: Scorer


class Recipe(Protocol):
    """A post-hoc recipe: tuned on the tune rows of one member's output, scored on its score rows."""

    def applies(self, inputs: RecipeInputs) -> bool: ...

    def run(self, inputs: RecipeInputs) -> tuple[float, float]:
        """(the metric on the score rows, the tuned parameter)."""
        ...


@dataclass(frozen=True)
class LogitAdjustmentRecipe:
    tau: float | None = None  # None: tuned over TAU_GRID

    def applies(self, inputs: RecipeInputs) -> bool:
        return inputs.class_priors is not None and inputs.adapter.kind == "softmax"

    def run(self, inputs: RecipeInputs) -> tuple[float, float]:
        grid = TAU_GRID if self.tau is None else (self.tau,)
        return logit_adjustment(
            inputs.output, inputs.adapter, inputs.class_priors, inputs.tune_rows, inputs.y_val,
            inputs.score, inputs.higher_is_better, grid=grid,
        )  # fmt: skip


@dataclass(frozen=True)
class ThresholdRecipe:
    def applies(self, inputs: RecipeInputs) -> bool:
        return (inputs.adapter.kind == "sigmoid" and inputs.adapter.out_dim == 1) or (
            inputs.adapter.kind == "softmax" and inputs.adapter.out_dim == 2 and inputs.y_val.dim() == 1
        )

    def run(self, inputs: RecipeInputs) -> tuple[float, float]:
        return threshold(
            inputs.output,
            inputs.adapter,
            inputs.tune_rows,
            inputs.y_val,
            inputs.score,
            inputs.higher_is_better,
        )


@dataclass(frozen=True)
class TemperatureRecipe:
    def applies(self, inputs: RecipeInputs) -> bool:
        return inputs.adapter.kind in ("softmax", "sigmoid")

    def run(self, inputs: RecipeInputs) -> tuple[float, float]:
        return temperature(
            inputs.output, inputs.adapter, inputs.tune_rows, inputs.y_val, inputs.score, inputs.log_loss
        )


def recipe_for(post_hoc: PostHoc) -> Recipe:
    """The strategy object of a candidate's post-hoc recipe."""
    if post_hoc.kind == "logit_adjustment":
        return LogitAdjustmentRecipe(post_hoc.tau)
    if post_hoc.kind == "threshold":
        return ThresholdRecipe()
    return TemperatureRecipe()
