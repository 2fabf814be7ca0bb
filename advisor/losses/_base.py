"""Shared pieces of the catalog: the parameter base model, the Module base class, reductions, tensor formats
and the switch for per-call target checks."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


class ReductionParams(LossParams):
    """Parameters of a loss whose only option is its reduction; subclass it to give your own loss the
    ``reduction`` built-ins have (and apply it with :meth:`CatalogLoss.reduce`)."""

    reduction: Reduction = ReductionField


# ------------------------------------------------------------------------------------------- tensor formats

INPUT_FORMATS: dict[str, str] = {
    "values": "point predictions shaped like the target",
    "quantiles": "one column per quantile level in the last dimension (*, Q)",
    "mean_log_var": "mean and log-variance in the last dimension (*, 2)",
    "log_rate": "log of the predicted mean (log link)",
    "rate": "the predicted mean itself (>= 0)",
    "softmax_logits": "logits read through a softmax over dim 1",
    "sigmoid_logits": "logits read through a sigmoid per element (one logit per label or channel)",
    "log_probs": "log-probabilities over dim 1",
    "probabilities": "probabilities (no activation applied)",
    "waveform": "waveforms (N, channels, T)",
}
TARGET_FORMATS: dict[str, str] = {
    "class_indices": "integer class per entry: the input's shape without dim 1 (0/1 for one sigmoid channel)",
    "like_input": "floats shaped like the input: values, 0/1 labels, one-hot or soft masks, probabilities",
    "log_like_input": "log-probabilities shaped like the input",
    "values": "floats shaped like the input without its last dimension",
}


@dataclass(frozen=True)
class TensorFormat:
    """The machine-readable form of a loss's documented input and target: how it reads the model's output
    (one of ``INPUT_FORMATS``) and the target layouts it accepts (``TARGET_FORMATS``).

    Two losses can be added on one output (``compound``) when they read it the same way and accept a common
    target layout. The registry's ``input`` and ``target`` strings stay the human-readable description.
    """

    input: str
    targets: frozenset[str]

    @classmethod
    def of(cls, input: str, *targets: str) -> TensorFormat:
        return cls(input, frozenset(targets))

    def shared_with(self, other: TensorFormat) -> TensorFormat | None:
        """The format both losses accept, or None when they read the output differently or share no target."""
        common = self.targets & other.targets
        return TensorFormat(self.input, common) if self.input == other.input and common else None

    def __str__(self) -> str:
        return f"input {self.input}, target {' or '.join(sorted(self.targets))}"


# ------------------------------------------------------------------------------------- per-call target checks


class _CheckState(threading.local):
    enabled = True


_CHECKS = _CheckState()


def checks_enabled() -> bool:
    """Whether losses check target values on each call in this thread (see :func:`checks`)."""
    return _CHECKS.enabled


@contextlib.contextmanager
def checks(enabled: bool) -> Iterator[None]:
    """Turn the per-call target value checks on or off inside a ``with`` block (in the calling thread).

    The checks that read tensor contents (class indices inside [0, C), binary targets 0 or 1) copy one flag
    to the host on every call: a device synchronisation on CUDA, and a graph break under ``torch.compile``.
    ``with advisor.losses.checks(False):`` skips them, so a loss then syncs nothing and compiles into one graph
    (``torch.compile(loss, fullgraph=True)``); shape and dtype checks, which read no tensor data, stay. With the
    checks off, an invalid target gives wrong values or a device-side assert instead of a
    :class:`~advisor.errors.LossInputError`: check the targets once (a call with the checks on) first.

    The checks are on by default. The setting is per thread, so concurrent trainings do not change each
    other's; ``torch.compile`` guards on it, so a compiled loss recompiles rather than skipping checks that
    were turned back on. Per-class parameter lists (weights, alpha, counts) reach the device once, on a
    loss's first call there, so later calls copy nothing from the host either. Not covered: ``lovasz`` with
    ``classes='present'`` asks the host which classes are present (part of its definition, not a check).
    """
    previous = _CHECKS.enabled
    _CHECKS.enabled = bool(enabled)
    try:
        yield
    finally:
        _CHECKS.enabled = previous


class CatalogLoss(nn.Module):
    """Base of every catalog loss: holds validated parameters and gives its spec back.

    Construct with keyword parameters (``FocalLoss(gamma=1.0)``) or a validated params model. ``forward``
    runs with autocast off and low-precision inputs promoted to float32, so fp16/bf16 activations never
    reach a log or an exp in half precision.
    """

    Params: ClassVar[type[LossParams]]
    loss_name: ClassVar[str]
    # The input and target layouts the loss reads (with its default parameters); None: undeclared, so the
    # loss cannot be a term of a compound loss. Losses whose layout depends on a parameter (an activation)
    # override :meth:`format_for` as well.
    tensor_format: ClassVar[TensorFormat | None] = None

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

    @classmethod
    def format_for(cls, params: LossParams) -> TensorFormat | None:
        """The tensor format of this loss configured with ``params`` (default: ``tensor_format``)."""
        return cls.tensor_format

    def spec(self) -> LossSpec:
        """The spec that builds an identical loss: ``build_loss(m.spec())`` equals ``m``."""
        return LossSpec(loss=self.loss_name, params=self.params.model_dump(mode="json"))

    def reduce(self, loss: Tensor, denominator: Tensor | float | None = None) -> Tensor:
        """Apply the ``reduction`` parameter to per-element values, as built-ins do: 'none' returns them,
        'sum' sums them, 'mean' divides the sum by ``denominator`` (default: the element count; 0 when the
        denominator is 0). For losses whose params declare ``reduction`` (e.g. subclass
        :class:`ReductionParams`)."""
        reduction = getattr(self.params, "reduction", None)
        if reduction not in ("none", "mean", "sum"):
            raise TypeError(
                f"{type(self).__name__}.Params declares no reduction 'none' | 'mean' | 'sum' "
                f"(got {reduction!r}); subclass ReductionParams"
            )
        return reduce_loss(loss, reduction, denominator)

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
    if isinstance(denominator, Tensor):
        return safe_divide(total, denominator.to(total.dtype))
    # A number becomes a tensor by a fill on the device, not by a host-to-device copy (which syncs on CUDA).
    return safe_divide(total, torch.full_like(total, float(denominator)))


@functools.lru_cache(maxsize=512)
def _device_constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


def class_tensor(values: Sequence[float] | None, like: Tensor) -> Tensor | None:
    """A per-class parameter list as a tensor on the device and dtype of ``like``.

    On an accelerator the tensor is made once per (values, dtype, device) and reused: copying a list from the
    host on every call would synchronise the device. Callers never modify it in place. Under
    ``torch.compile`` it is a graph constant instead.
    """
    if values is None:
        return None
    if like.device.type == "cpu" or torch.compiler.is_compiling():
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)
    return _device_constant(tuple(values), like.dtype, like.device)


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
    counts = class_tensor(samples_per_class, like).clamp_min(1.0)
    return counts / counts.sum()
