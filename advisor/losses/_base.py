"""Shared pieces of the catalog: the parameter base model, the Module base class and reductions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from advisor.errors import FieldViolation, LossInputError
from advisor.spec import LossSpec

Reduction = Literal["none", "mean", "sum"]
ReductionField = Field(
    "mean", description="'none': per-element values; 'mean': see the loss's denominator; 'sum'."
)

_LOW_PRECISION = (torch.float16, torch.bfloat16)


# A target value marking entries to skip: any int64 a target tensor can hold.
IgnoreIndex = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class LossParams(BaseModel):
    """Base of every loss's parameter schema: unknown fields are errors, values are immutable, and numbers are
    finite (an ``Infinity`` in JSON would serialise back as ``null``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


class CatalogLoss(nn.Module):
    """Base of every catalog loss: holds validated parameters and gives its spec back.

    Construct with keyword parameters (``FocalLoss(gamma=1.0)``) or a validated params model. ``forward``
    runs with autocast off and low-precision inputs promoted to float32, so fp16/bf16 activations never
    reach a log or an exp in half precision.
    """

    Params: ClassVar[type[LossParams]]
    loss_name: ClassVar[str]

    def __init__(self, params: LossParams | None = None, **kwargs: Any) -> None:
        super().__init__()
        if params is None:
            from advisor.losses.registry import validate_params  # the registry imports this module

            params = validate_params(self.loss_name, kwargs)
        elif kwargs:
            raise TypeError("pass either a params model or keyword parameters, not both")
        elif not isinstance(params, self.Params):
            raise TypeError(
                f"{type(self).__name__} takes {self.Params.__name__}, got {type(params).__name__}"
            )
        self.params = params

    def spec(self) -> LossSpec:
        """The spec that builds an identical loss: ``build_loss(m.spec())`` equals ``m``."""
        return LossSpec(loss=self.loss_name, params=self.params.model_dump(mode="json"))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if torch.is_autocast_enabled(input.device.type):
            with torch.autocast(input.device.type, enabled=False):
                return self.compute(upcast(input), upcast(target))
        return self.compute(upcast(input), upcast(target))

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        """The loss on promoted inputs; subclasses call their functional form here."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())


def upcast(x: Tensor) -> Tensor:
    """Promote fp16/bf16 floating tensors to float32; leave float32/float64 and integer tensors alone."""
    return x.float() if x.dtype in _LOW_PRECISION else x


def safe_divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator, giving 0 (with a zero, finite gradient) where the denominator is 0."""
    nonzero = denominator != 0
    return torch.where(nonzero, numerator, torch.zeros_like(numerator)) / torch.where(
        nonzero, denominator, torch.ones_like(denominator)
    )


def reduce_loss(loss: Tensor, reduction: Reduction, denominator: Tensor | float | None = None) -> Tensor:
    """Apply a reduction. 'mean' divides the sum by ``denominator`` (default: the element count); when the
    denominator is 0 (everything ignored) the mean is 0, not NaN."""
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if denominator is None:
        denominator = loss.numel()
    return safe_divide(total, torch.as_tensor(denominator, dtype=total.dtype, device=total.device))


def class_tensor(values: Sequence[float] | None, like: Tensor) -> Tensor | None:
    """A per-class parameter list as a tensor on the device and dtype of ``like``."""
    return None if values is None else torch.as_tensor(values, dtype=like.dtype, device=like.device)


def check_same_shape(input: Tensor, target: Tensor, loss: str) -> None:
    if input.shape != target.shape:
        raise LossInputError(
            FieldViolation(
                "target",
                f"{loss}: target shape {tuple(target.shape)} must equal input shape {tuple(input.shape)}",
            )
        )


def check_class_count(values: Sequence[Any] | None, num_classes: int, loss: str, param: str) -> None:
    if values is not None and len(values) != num_classes:
        raise LossInputError(
            FieldViolation(
                f"params.{param}",
                f"{loss}: has {len(values)} entries but the input has {num_classes} classes (dim 1)",
            )
        )


def counts_to_priors(samples_per_class: Sequence[int], like: Tensor) -> Tensor:
    """Class priors from dataset-level counts; a zero count is treated as one sample so log-priors and
    re-weighting stay finite (a class never seen in training cannot be a training target anyway)."""
    counts = torch.as_tensor(samples_per_class, dtype=like.dtype, device=like.device).clamp_min(1.0)
    return counts / counts.sum()
