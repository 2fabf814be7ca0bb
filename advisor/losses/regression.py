"""Regression and count losses: functional forms and their Modules.

Conventions: ``input`` and ``target`` have the same shape (N, *) unless a loss says otherwise; 'mean' divides
by the number of elements.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

from advisor.errors import FieldViolation, LossInputError
from advisor.losses._base import (
    CatalogLoss,
    LossParams,
    Reduction,
    ReductionField,
    ReductionParams,
    TensorFormat,
    check_same_shape,
    class_tensor,
    reduce_loss,
)
from advisor.losses.registry import register_loss

_SAME_SHAPE = "predictions (N, *), float"
# Marks a parameter measured in the target's units: whoever rescales the target (trials standardize it)
# rescales these too.
TARGET_UNITS = {"units": "target"}
_SAME_TARGET = "targets, same shape as input"

# --------------------------------------------------------------------------------------------------- functional


def log_cosh_loss(input: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """log(cosh(d)), d = input - target, in the stable form |d| + softplus(-2|d|) - log 2.

    The naive ``log(cosh(d))`` overflows in float32 near |d| = 90; this form is exact and finite everywhere.
    """
    d = (input - target).abs()
    return reduce_loss(d + F.softplus(-2.0 * d) - math.log(2.0), reduction)


def quantile_loss(
    input: Tensor, target: Tensor, quantiles: tuple[float, ...] | list[float], reduction: Reduction = "mean"
) -> Tensor:
    """Pinball loss max(q e, (q - 1) e), e = target - input, for each quantile level q.

    ``input`` is (*, Q) for Q quantiles and ``target`` is (*); with one quantile ``input`` may also have the
    target's shape. 'none' returns (*, Q); 'mean' divides by the element count of that tensor.
    """
    q = class_tensor(quantiles, input)
    if len(quantiles) == 1 and input.shape == target.shape:
        input = input.unsqueeze(-1)
    if input.shape != (*target.shape, len(quantiles)):
        raise LossInputError(
            FieldViolation(
                "input",
                f"quantile: input shape {tuple(input.shape)} must be target shape {tuple(target.shape)} "
                f"plus a last dimension of {len(quantiles)} quantiles",
            )
        )
    error = target.unsqueeze(-1) - input
    return reduce_loss(torch.maximum(q * error, (q - 1.0) * error), reduction)


def _split_mean_log_var(input: Tensor, target: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    if input.shape[-1:] != (2,) or input.shape[:-1] != target.shape:
        raise LossInputError(
            FieldViolation(
                "input",
                f"{loss}: input shape {tuple(input.shape)} must be target shape {tuple(target.shape)} plus a last "
                "dimension of 2 (mean, log-variance)",
            )
        )
    return input[..., 0], input[..., 1]


def gaussian_nll_loss(
    input: Tensor, target: Tensor, *, full: bool = False, eps: float = 1e-6, reduction: Reduction = "mean"
) -> Tensor:
    """Gaussian negative log-likelihood with a log-variance head.

    loss = 0.5 (log v + (target - mean)^2 / v) [+ 0.5 log(2 pi) if ``full``], with v = max(exp(s), eps) and
    ``input[..., 0] = mean``, ``input[..., 1] = s`` (log-variance). Parametrising by log-variance keeps v
    positive without a softplus and the loss finite in float32.
    """
    mean, log_var = _split_mean_log_var(input, target, "gaussian_nll")
    return reduce_loss(_gaussian_nll_terms(mean, log_var, target, full, eps), reduction)


def _gaussian_nll_terms(mean: Tensor, log_var: Tensor, target: Tensor, full: bool, eps: float) -> Tensor:
    log_var = log_var.clamp_min(math.log(eps))
    nll = 0.5 * (log_var + (target - mean) ** 2 * torch.exp(-log_var))
    return nll + 0.5 * math.log(2 * math.pi) if full else nll


def beta_nll_loss(
    input: Tensor,
    target: Tensor,
    *,
    beta: float = 0.5,
    full: bool = False,
    eps: float = 1e-6,
    reduction: Reduction = "mean",
) -> Tensor:
    """beta-NLL (Seitzer et al. 2022): the Gaussian NLL weighted by stop-gradient(v)^beta.

    beta = 0 is the Gaussian NLL; beta = 1 gives the mean the gradient of MSE. Input as in
    :func:`gaussian_nll_loss`.
    """
    mean, log_var = _split_mean_log_var(input, target, "beta_nll")
    nll = _gaussian_nll_terms(mean, log_var, target, full, eps)
    weight = torch.exp(beta * log_var.clamp_min(math.log(eps))).detach()
    return reduce_loss(nll * weight, reduction)


def tweedie_loss(
    input: Tensor, target: Tensor, *, power: float = 1.5, reduction: Reduction = "mean"
) -> Tensor:
    """Tweedie deviance (up to terms constant in the prediction), log link, 1 < p < 2.

    loss = -y exp((1 - p) eta) / (1 - p) + exp((2 - p) eta) / (2 - p), with eta = ``input`` the log of the
    predicted mean and y = ``target`` >= 0.
    """
    return reduce_loss(
        -target * torch.exp((1.0 - power) * input) / (1.0 - power)
        + torch.exp((2.0 - power) * input) / (2.0 - power),
        reduction,
    )


# ------------------------------------------------------------------------------------------------------ modules


_POINT = TensorFormat.of("values", "like_input")
_LOG_RATE = TensorFormat.of("log_rate", "like_input")
_MEAN_LOG_VAR_FORMAT = TensorFormat.of("mean_log_var", "values")


@register_loss(
    "mse",
    heads=("regression",),
    input=_SAME_SHAPE,
    target=_SAME_TARGET,
    reference="Gauss (1809); torch.nn.MSELoss",
    _builtin=True,
)
class MSELoss(CatalogLoss):
    """Mean squared error: (input - target)^2.

    The default regression loss; optimal for a Gaussian noise model and the RMSE metric. Wraps
    ``torch.nn.functional.mse_loss``.
    """

    Params = ReductionParams
    tensor_format = _POINT

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        check_same_shape(input, target, "mse")
        return F.mse_loss(input, target, reduction=self.params.reduction)


@register_loss(
    "l1",
    heads=("regression",),
    input=_SAME_SHAPE,
    target=_SAME_TARGET,
    reference="Laplace (1774); torch.nn.L1Loss",
    _builtin=True,
)
class L1Loss(CatalogLoss):
    """Mean absolute error: |input - target|.

    Estimates the conditional median; robust to heavy outliers and matched to the MAE metric. Wraps
    ``torch.nn.functional.l1_loss``.
    """

    Params = ReductionParams
    tensor_format = _POINT

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        check_same_shape(input, target, "l1")
        return F.l1_loss(input, target, reduction=self.params.reduction)


class HuberParams(LossParams):
    delta: float = Field(
        1.0,
        json_schema_extra=TARGET_UNITS,
        gt=0,
        description="Residual size where the loss turns from quadratic to linear.",
    )
    reduction: Reduction = ReductionField


@register_loss(
    "huber",
    heads=("regression",),
    input=_SAME_SHAPE,
    target=_SAME_TARGET,
    reference="Huber (1964), Robust Estimation of a Location Parameter; torch.nn.HuberLoss",
    _builtin=True,
)
class HuberLoss(CatalogLoss):
    """Huber loss: 0.5 r^2 if |r| < delta, else delta (|r| - 0.5 delta), r = input - target.

    Quadratic near zero, linear in the tails: robust to a moderate share of outliers. Equals
    ``delta * smooth_l1(beta=delta)``. Wraps ``torch.nn.functional.huber_loss``.
    """

    Params = HuberParams
    tensor_format = _POINT

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        check_same_shape(input, target, "huber")
        return F.huber_loss(input, target, delta=self.params.delta, reduction=self.params.reduction)


class SmoothL1Params(LossParams):
    beta: float = Field(
        1.0,
        ge=0,
        json_schema_extra=TARGET_UNITS,
        description="Residual size where the loss turns from quadratic to linear.",
    )
    reduction: Reduction = ReductionField


@register_loss(
    "smooth_l1",
    heads=("regression",),
    input=_SAME_SHAPE,
    target=_SAME_TARGET,
    reference="Girshick (2015), Fast R-CNN; torch.nn.SmoothL1Loss",
    _builtin=True,
)
class SmoothL1Loss(CatalogLoss):
    """Smooth L1: 0.5 r^2 / beta if |r| < beta, else |r| - 0.5 beta, r = input - target.

    Huber divided by beta: the linear part has slope 1 whatever beta is; beta = 0 is L1. Wraps
    ``torch.nn.functional.smooth_l1_loss``.
    """

    Params = SmoothL1Params
    tensor_format = _POINT

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        check_same_shape(input, target, "smooth_l1")
        return F.smooth_l1_loss(input, target, beta=self.params.beta, reduction=self.params.reduction)


@register_loss(
    "log_cosh",
    heads=("regression",),
    input=_SAME_SHAPE,
    target=_SAME_TARGET,
    reference="Chen et al. (2019), Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder",
    _builtin=True,
)
class LogCoshLoss(CatalogLoss):
    """Log-cosh: log(cosh(r)), r = input - target, computed as |r| + softplus(-2|r|) - log 2.

    Behaves like r^2 / 2 for small residuals and like |r| - log 2 for large ones: a smooth Huber without a
    threshold. Finite for any residual (the naive form overflows in float32 near |r| = 90).
    """

    Params = ReductionParams
    tensor_format = _POINT

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        check_same_shape(input, target, "log_cosh")
        return log_cosh_loss(input, target, self.params.reduction)


class QuantileParams(LossParams):
    quantiles: list[float] = Field(
        default_factory=lambda: [0.5],
        min_length=1,
        description="Quantile levels in (0, 1), one per output column, strictly increasing.",
    )
    reduction: Reduction = ReductionField

    @field_validator("quantiles")
    @classmethod
    def _levels_in_open_unit_interval(cls, levels: list[float]) -> list[float]:
        if any(not 0.0 < q < 1.0 for q in levels):
            raise ValueError(f"every level must lie in (0, 1), got {levels}")
        if any(b <= a for a, b in itertools.pairwise(levels)):
            raise ValueError(f"levels must be strictly increasing, got {levels}")
        return levels


@register_loss(
    "quantile",
    heads=("regression",),
    input="predicted quantiles (*, Q), one column per level; with one level also (*)",
    target="targets (*)",
    reference="Koenker & Bassett (1978), Regression Quantiles",
    _builtin=True,
)
class QuantileLoss(CatalogLoss):
    """Pinball (quantile) loss: max(q e, (q - 1) e), e = target - prediction, for each level q.

    Level 0.5 gives half the absolute error (the median); levels such as [0.05, 0.5, 0.95] train a
    prediction interval. Not multiplied by 2 (one popular library does). 'mean' divides by N x Q.
    """

    Params = QuantileParams
    tensor_format = TensorFormat.of("quantiles", "values")

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        return quantile_loss(input, target, self.params.quantiles, self.params.reduction)


class PoissonNLLParams(LossParams):
    log_input: bool = Field(
        True, description="True: input is the log-rate (log link); False: the rate itself."
    )
    full: bool = Field(False, description="Add the Stirling term of log(target!) so values are true NLLs.")
    eps: float = Field(1e-8, gt=0, description="Added to the rate before its log when log_input is False.")
    reduction: Reduction = ReductionField


@register_loss(
    "poisson_nll",
    heads=("count", "regression"),
    input="log-rate (N, *) when log_input, else rate >= 0",
    target="counts >= 0, same shape as input",
    reference="Nelder & Wedderburn (1972), Generalized Linear Models; torch.nn.PoissonNLLLoss",
    _builtin=True,
)
class PoissonNLLLoss(CatalogLoss):
    """Poisson negative log-likelihood: exp(x) - y x (log link), or r - y log(r + eps) for a rate r.

    The default count loss when the variance is close to the mean. Wraps
    ``torch.nn.functional.poisson_nll_loss``.
    """

    Params = PoissonNLLParams
    tensor_format = _LOG_RATE

    @classmethod
    def format_for(cls, params: PoissonNLLParams) -> TensorFormat:
        return _LOG_RATE if params.log_input else TensorFormat.of("rate", "like_input")

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        check_same_shape(input, target, "poisson_nll")
        p = self.params
        return F.poisson_nll_loss(
            input, target, log_input=p.log_input, full=p.full, eps=p.eps, reduction=p.reduction
        )


class GaussianNLLParams(LossParams):
    full: bool = Field(False, description="Add the constant 0.5 log(2 pi).")
    eps: float = Field(1e-6, gt=0, description="Lower bound of the variance (clamps the log-variance).")
    reduction: Reduction = ReductionField


_MEAN_LOG_VAR = "(*, 2): mean and log-variance in the last dimension"


@register_loss(
    "gaussian_nll",
    heads=("regression",),
    input=_MEAN_LOG_VAR,
    target="targets (*)",
    reference="Nix & Weigend (1994), Estimating the mean and variance of the target probability distribution",
    _builtin=True,
)
class GaussianNLLLoss(CatalogLoss):
    """Gaussian NLL with a learned variance: 0.5 (s + (y - mu)^2 exp(-s)), s = log-variance.

    For heteroscedastic targets and when predictive intervals are needed. The input carries the mean and the
    log-variance in its last dimension (torch's GaussianNLLLoss takes the variance as a third argument).
    """

    Params = GaussianNLLParams
    tensor_format = _MEAN_LOG_VAR_FORMAT

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        return gaussian_nll_loss(input, target, full=p.full, eps=p.eps, reduction=p.reduction)


class BetaNLLParams(GaussianNLLParams):
    beta: float = Field(0.5, ge=0, le=1, description="Exponent of the stop-gradient variance weight.")


@register_loss(
    "beta_nll",
    heads=("regression",),
    input=_MEAN_LOG_VAR,
    target="targets (*)",
    reference="Seitzer et al. (2022), On the Pitfalls of Heteroscedastic Uncertainty Estimation with "
    "Probabilistic Neural Networks, ICLR",
    _builtin=True,
)
class BetaNLLLoss(CatalogLoss):
    """beta-NLL: sg(v)^beta * 0.5 (log v + (y - mu)^2 / v), v = exp(s).

    Fixes the Gaussian NLL's habit of giving up on hard regions by inflating their variance; beta = 0.5 is
    the paper's recommendation. Input as for ``gaussian_nll``.
    """

    Params = BetaNLLParams
    tensor_format = _MEAN_LOG_VAR_FORMAT

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        return beta_nll_loss(input, target, beta=p.beta, full=p.full, eps=p.eps, reduction=p.reduction)


class TweedieParams(LossParams):
    power: float = Field(1.5, gt=1, lt=2, description="Tweedie power p: 1 is Poisson, 2 is Gamma.")
    reduction: Reduction = ReductionField


@register_loss(
    "tweedie",
    heads=("count", "regression"),
    input="log of the predicted mean (N, *)",
    target="non-negative targets, same shape as input (exact zeros allowed)",
    reference="Jorgensen (1987), Exponential dispersion models; Zhou et al. (2022), Tweedie gradient boosting",
    _builtin=True,
)
class TweedieLoss(CatalogLoss):
    """Tweedie deviance, log link: -y exp((1-p) x) / (1-p) + exp((2-p) x) / (2-p), 1 < p < 2.

    For non-negative targets with exact zeros and a continuous positive part (claims, rainfall, sales);
    p = 1.5 is the usual start. Constant terms of the deviance are dropped.
    """

    Params = TweedieParams
    tensor_format = _LOG_RATE

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        check_same_shape(input, target, "tweedie")
        return tweedie_loss(input, target, power=self.params.power, reduction=self.params.reduction)
