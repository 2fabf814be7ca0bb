"""Prediction-time recipes: what to do with a trained model's logits so predictions reach the metric the
evidence measured.

A recommendation whose loss comes with a recipe (``RankedCandidate.post_hoc``) carries the recipe's tuned
values: the logit-adjustment strength and class priors, the decision threshold, or the softmax temperature,
each the median of the values the trials tuned on their tune rows. Apply them with :func:`apply_recipe`::

    labels = advisor.apply_recipe(recipe, model(x))  # class labels
    probabilities = advisor.apply_recipe(recipe, model(x), output="probabilities")

Logits are the trained model's raw output in the layout its loss takes: ``(N, C)`` for softmax losses
(``C >= 2``), ``(N,)`` or ``(N, 1)`` for one sigmoid logit; ``(N, L)`` multilabel logits for temperature.

- logit adjustment (Menon et al., 2021): ``z - tau * log(pi)``, pi the training class frequencies;
- threshold: predict positive when ``p >= t``, done as a shift of the positive logit by ``-log(t / (1 - t))``
  (for two softmax logits the positive logit is ``z_1 - z_0``);
- temperature (Guo et al., 2017): ``z / T``.

References:
    Menon et al., "Long-tail learning via logit adjustment", ICLR 2021.
    Guo et al., "On Calibration of Modern Neural Networks", ICML 2017.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError, field_validator

from advisor.errors import AdvisorError, FieldViolation
from advisor.rules.schema import PostHoc
from advisor.spec import violations_from_pydantic

if TYPE_CHECKING:
    from torch import Tensor

Output = Literal["labels", "logits", "probabilities"]


class RecipeError(AdvisorError):
    """A recipe that cannot be applied: untuned values, or logits that do not fit it."""


class Recipe(PostHoc):
    """A prediction-time recipe with its tuned values, ready to apply to a trained model's logits."""

    threshold: float | None = Field(
        None, gt=0, lt=1, description="Decision threshold on the positive-class probability (binary)."
    )
    temperature: float | None = Field(None, gt=0, description="Softmax (or sigmoid) temperature T.")
    class_priors: list[float] | None = Field(
        None, description="Training class frequencies pi for logit adjustment, by class index."
    )
    activation: Literal["softmax", "sigmoid"] = Field(
        "softmax",
        description="How the loss reads the logits: softmax over dim 1, or an independent sigmoid per logit.",
    )

    @field_validator("class_priors")
    @classmethod
    def _priors(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) < 2 or any(not (0 < p <= 1) for p in value)):
            raise ValueError("needs at least 2 class frequencies, each in (0, 1]")
        return value

    @property
    def ready(self) -> bool:
        """Whether every value the recipe needs is known (rules-only recommendations leave them to tune)."""
        if self.kind == "logit_adjustment":
            return self.tau is not None and self.class_priors is not None
        return (self.threshold if self.kind == "threshold" else self.temperature) is not None

    def describe(self) -> str:
        """The recipe in one line, e.g. 'predict argmax(z - 1 log pi)'."""
        if self.kind == "logit_adjustment":
            tau = "tau" if self.tau is None else f"{self.tau:g}"
            return f"predict argmax(z - {tau} log pi), pi the training class frequencies"
        if self.kind == "threshold":
            t = "a threshold tuned on validation rows" if self.threshold is None else f"{self.threshold:.3g}"
            return f"predict positive when p >= {t}"
        t = "T fitted on validation rows" if self.temperature is None else f"T = {self.temperature:.3g}"
        return f"divide the logits by {t} before the softmax"

    def logits(self, logits: Tensor) -> Tensor:
        """The adjusted logits; their argmax (softmax) or sign (one sigmoid logit) is the prediction."""
        self._check_ready()
        if self.kind == "temperature":
            return logits / self.temperature
        if self.kind == "logit_adjustment":
            if logits.dim() != 2 or logits.shape[1] != len(self.class_priors):
                raise RecipeError(
                    FieldViolation(
                        "logits",
                        f"logit adjustment needs (N, {len(self.class_priors)}) logits, got "
                        f"{tuple(logits.shape)}",
                    )
                )
            import torch

            log_priors = torch.log(
                torch.as_tensor(self.class_priors, dtype=logits.dtype, device=logits.device)
            )
            return logits - self.tau * log_priors
        shift = math.log(self.threshold / (1 - self.threshold))
        if self.activation == "softmax" and logits.dim() == 2 and logits.shape[1] == 2:
            return logits - logits.new_tensor([0.0, shift])  # the positive logit z_1 - z_0 moves by -shift
        if self.activation == "sigmoid" and (
            logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1)
        ):
            return logits - shift
        wanted = "(N, 2) softmax" if self.activation == "softmax" else "(N,) or (N, 1) sigmoid"
        raise RecipeError(
            FieldViolation("logits", f"a threshold needs {wanted} logits, got {tuple(logits.shape)}")
        )

    def apply(self, logits: Tensor, output: Output = "labels") -> Tensor:
        """Labels, adjusted logits or probabilities from the model's raw logits."""
        adjusted = self.logits(logits)
        if output == "logits":
            return adjusted
        if self.activation == "sigmoid":
            return adjusted.sigmoid() if output == "probabilities" else (adjusted > 0).long()
        return adjusted.softmax(1) if output == "probabilities" else adjusted.argmax(1)

    def _check_ready(self) -> None:
        if not self.ready:
            missing = {"logit_adjustment": "tau and class_priors", "threshold": "threshold"}.get(
                self.kind, "temperature"
            )
            raise RecipeError(
                FieldViolation(
                    "recipe",
                    f"{self.kind}: {missing} not tuned (a rules-only recommendation); run trials or tune it on "
                    "validation rows",
                )
            )


def smoothed_priors(counts: list[int] | list[float]) -> list[float]:
    """Class frequencies with add-one smoothing, (n_c + 1) / (N + K): finite logs for unseen classes."""
    total = sum(counts) + len(counts)
    return [(c + 1.0) / total for c in counts]


def parse_recipe(recipe: Recipe | Mapping[str, Any]) -> Recipe:
    """A recipe from its JSON form (``RankedCandidate.post_hoc`` dumped, or ``specs.json``'s ``recipe``)."""
    if isinstance(recipe, Recipe):
        return recipe
    if not isinstance(recipe, Mapping):
        raise RecipeError(FieldViolation("recipe", f"expected a mapping, got {type(recipe).__name__}"))
    try:
        return Recipe.model_validate(dict(recipe))
    except ValidationError as exc:
        raise RecipeError(violations_from_pydantic(exc, prefix="recipe")) from None


def apply_recipe(recipe: Recipe | Mapping[str, Any], logits: Tensor, *, output: Output = "labels") -> Tensor:
    """Apply a recommendation's prediction-time recipe to a trained model's raw logits.

    Parameters:
        recipe: ``RankedCandidate.post_hoc`` (or its JSON form).
        logits: the model's raw output in its loss's input layout (see the module docstring).
        output: ``"labels"`` (class indices, or 0/1 for one logit), ``"logits"`` (adjusted) or
            ``"probabilities"`` (softmax, or sigmoid for one logit).

    Raises:
        RecipeError: the recipe's values are not tuned, or the logits do not fit it.
    """
    if output not in ("labels", "logits", "probabilities"):
        raise RecipeError(FieldViolation("output", f"'{output}' is not one of labels, logits, probabilities"))
    return parse_recipe(recipe).apply(logits, output)
