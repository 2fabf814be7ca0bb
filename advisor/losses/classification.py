"""Classification losses (binary, multiclass, multilabel, ordinal): functional forms and their Modules.

Conventions shared by every loss here:

* ``input`` holds logits (log-probabilities for ``nll``), never probabilities; the class dimension is dim 1:
  (N, C) or (N, C, d1, ...). Binary and multilabel losses take logits of any shape with a target of the same
  shape.
* Class-index targets are integers (N) or (N, d1, ...); entries equal to ``ignore_index`` contribute nothing
  and are left out of the 'mean' denominator. 'none' returns zeros at ignored positions.
* Unless a loss says otherwise, 'mean' divides by the number of non-ignored targets.
* Per-class lists (``weight``, ``alpha``, ``samples_per_class``) must have one entry per class (dim 1).
* Target values (class indices in range, binary targets 0 or 1) are checked on every call unless
  :func:`advisor.losses.checks` turns that off (the check syncs the device and breaks ``torch.compile`` graphs).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from advisor.errors import FieldViolation, LossInputError
from advisor.losses._base import (
    CatalogLoss,
    IgnoreIndex,
    LossParams,
    Reduction,
    ReductionField,
    TensorFormat,
    check_class_count,
    check_same_shape,
    checks_enabled,
    class_tensor,
    counts_to_priors,
    reduce_loss,
)
from advisor.losses.registry import register_loss

NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]

_LOGITS = "logits (N, C) or (N, C, d1, ...), class dim 1"
_INDICES = "class indices (N) or (N, d1, ...), int64; ignore_index marks entries to skip"
_BINARY_LOGITS = "logits, any shape (N, *); one column per label for multilabel"
_BINARY_TARGET = "0/1 targets, same shape as input; ignore_index (if set) marks entries to skip"
_MULTICLASS = ("multiclass", "binary", "ordinal")
# Pixel-wise losses that also serve segmentation heads, (N, C, *spatial) logits with (N, *spatial) indices.
_MULTICLASS_DENSE = (*_MULTICLASS, "segmentation")
_SOFTMAX = TensorFormat.of("softmax_logits", "class_indices")
_SIGMOID = TensorFormat.of("sigmoid_logits", "like_input")

# ------------------------------------------------------------------------------------------ shared mechanics


def _class_last(input: Tensor, loss: str) -> Tensor:
    """(N, C, *) logits as (M, C) rows, one per target entry."""
    if input.dim() < 2 or input.shape[1] < 2:
        raise LossInputError(
            FieldViolation(
                "input", f"{loss}: input must be (N, C, ...) with C >= 2 classes, got {tuple(input.shape)}"
            )
        )
    return input.movedim(1, -1).reshape(-1, input.shape[1])


def _checked_targets(
    input: Tensor, target: Tensor, ignore_index: int | None, loss: str
) -> tuple[Tensor, Tensor]:
    """Flattened class indices with ignored entries replaced by 0, and the mask of entries that count."""
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected or target.is_floating_point():
        raise LossInputError(
            FieldViolation(
                "target",
                f"{loss}: target must be integer class indices of shape {expected}, got "
                f"{target.dtype} {tuple(target.shape)}",
            )
        )
    flat = target.reshape(-1)
    valid = flat != ignore_index if ignore_index is not None else torch.ones_like(flat, dtype=torch.bool)
    num_classes = input.shape[1]
    if checks_enabled():
        out_of_range = valid & ((flat < 0) | (flat >= num_classes))
        if bool(out_of_range.any()):
            bad = flat[out_of_range][0].item()
            raise LossInputError(
                FieldViolation(
                    "target",
                    f"{loss}: class index {bad} outside [0, {num_classes - 1}] (ignore_index={ignore_index})",
                )
            )
    return torch.where(valid, flat, torch.zeros_like(flat)), valid


def _binary_valid(
    input: Tensor, target: Tensor, ignore_index: int | None, loss: str
) -> tuple[Tensor, Tensor]:
    """0/1 targets with ignored entries replaced by 0, and the mask of entries that count."""
    check_same_shape(input, target, loss)
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    target = torch.where(valid, target, torch.zeros_like(target)).to(input.dtype)
    if checks_enabled() and bool(((target != 0) & (target != 1)).any()):
        raise LossInputError(FieldViolation("target", f"{loss}: targets must be 0 or 1 (or ignore_index)"))
    return target, valid


def _along_class_dim(values: Tensor, input: Tensor) -> Tensor:
    """Shape a per-class vector to broadcast along dim 1 of ``input`` (or along a 1-D input)."""
    return values if input.dim() < 2 else values.view(1, -1, *([1] * (input.dim() - 2)))


def _finish(
    per_entry: Tensor, valid: Tensor, reduction: Reduction, shape: torch.Size, denominator=None
) -> Tensor:
    """Zero ignored entries, then reduce; 'none' gives the target's shape, 'mean' divides by ``denominator``
    (default: the count of valid entries)."""
    per_entry = torch.where(valid, per_entry, torch.zeros_like(per_entry))
    if reduction == "none":
        return per_entry.reshape(shape)
    return reduce_loss(per_entry, reduction, valid.sum() if denominator is None else denominator)


def _log_pt_terms(logits: Tensor, safe_target: Tensor) -> tuple[Tensor, Tensor]:
    """log p_t and log(1 - p_t) for (M, C) logits, both in log space.

    log(1 - p_t) is the log-sum-exp of the other classes minus that of all classes, so it stays finite (with
    a finite gradient) when p_t rounds to 1 in floating point.
    """
    log_normalizer = torch.logsumexp(logits, dim=1)
    log_pt = logits.gather(1, safe_target[:, None])[:, 0] - log_normalizer
    others = logits.masked_fill(F.one_hot(safe_target, logits.shape[1]).bool(), float("-inf"))
    return log_pt, torch.logsumexp(others, dim=1) - log_normalizer


# --------------------------------------------------------------------------------------------------- functional


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> Tensor:
    """Cross-entropy on logits, torch's definition, with a mean that is 0 (not NaN) when all are ignored.

    l_i = (1 - e) w_{y_i} (-log p_{i,y_i}) + (e / C) sum_c w_c (-log p_ic); 'mean' = sum of valid l_i /
    sum of valid w_{y_i} (the count of valid targets without weights).
    """
    logits = _class_last(input, "cross_entropy")
    safe, valid = _checked_targets(input, target, ignore_index, "cross_entropy")
    per_entry = F.cross_entropy(
        logits, safe, weight=weight, reduction="none", label_smoothing=label_smoothing
    )
    denominator = (
        None if weight is None else torch.where(valid, weight[safe], torch.zeros_like(per_entry)).sum()
    )
    return _finish(per_entry, valid, reduction, target.shape, denominator)


def focal_loss(
    input: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: Tensor | None = None,
    ignore_index: int = -100,
    mean_over: Literal["samples", "elements"] = "samples",
    reduction: Reduction = "mean",
) -> Tensor:
    """Softmax focal loss: -alpha_y (1 - p_y)^gamma log p_y (Lin et al. 2017, multiclass form).

    (1 - p_y)^gamma is computed as exp(gamma log(1 - p_y)) in log space. 'mean' divides by the number of
    valid targets (``mean_over='samples'``) or by that times C (``'elements'``, as kornia and MONAI do).
    """
    logits = _class_last(input, "focal")
    safe, valid = _checked_targets(input, target, ignore_index, "focal")
    log_pt, log_1m_pt = _log_pt_terms(logits, safe)
    per_entry = -torch.exp(gamma * log_1m_pt) * log_pt
    if alpha is not None:
        per_entry = per_entry * alpha[safe]
    scale = input.shape[1] if mean_over == "elements" else 1
    return _finish(per_entry, valid, reduction, target.shape, valid.sum() * scale)


def binary_focal_loss(
    input: Tensor,
    target: Tensor,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Sigmoid focal loss: -a_t (1 - p_t)^gamma log p_t, a_t = alpha if y = 1 else 1 - alpha.

    Computed as exp(gamma logsigmoid(-x (2y - 1))) * BCE(x, y): finite values and gradients for saturated
    logits, also for gamma < 1. ``alpha=None`` drops the class weighting (then gamma = 0 is plain BCE).
    """
    y, valid = _binary_valid(input, target, ignore_index, "binary_focal")
    bce = F.binary_cross_entropy_with_logits(input, y, reduction="none")
    per_entry = torch.exp(gamma * F.logsigmoid(-input * (2.0 * y - 1.0))) * bce
    if alpha is not None:
        per_entry = per_entry * (alpha * y + (1.0 - alpha) * (1.0 - y))
    return _finish(per_entry, valid, reduction, target.shape)


def asymmetric_loss(
    input: Tensor,
    target: Tensor,
    gamma_neg: float = 4.0,
    gamma_pos: float = 1.0,
    clip: float = 0.05,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Asymmetric loss (Ridnik et al. 2021): -[y (1-p)^g+ log p + (1-y) p_m^g- log(1 - p_m)], p_m = max(p - m, 0).

    'mean' divides by the number of valid elements (N x C); the reference implementation returns the sum,
    which is ``reduction='sum'``.
    """
    y, valid = _binary_valid(input, target, ignore_index, "asl")
    log_p = F.logsigmoid(input)
    if clip > 0:
        p_shifted = (torch.sigmoid(input) - clip).clamp_min(0.0)
        log_1m_p_shifted = torch.log((torch.sigmoid(-input) + clip).clamp_max(1.0))
    else:
        p_shifted, log_1m_p_shifted = torch.sigmoid(input), F.logsigmoid(-input)
    # clamp_min(tiny) keeps 0^gamma at 0 (1 when gamma = 0) without an infinite gradient at 0.
    negative_weight = p_shifted.clamp_min(torch.finfo(input.dtype).tiny) ** gamma_neg
    positive = y * torch.exp(gamma_pos * F.logsigmoid(-input)) * log_p
    negative = (1.0 - y) * negative_weight * log_1m_p_shifted
    return _finish(-(positive + negative), valid, reduction, target.shape)


def class_balanced_weights(samples_per_class: list[int], beta: float, like: Tensor) -> Tensor:
    """Effective-number weights (1 - beta) / (1 - beta^n_c), normalised to sum to C (Cui et al. 2019).

    A zero count is treated as one sample, so no weight is infinite.
    """
    counts = class_tensor(samples_per_class, like).clamp_min(1.0)
    weights = (1.0 - beta) / (1.0 - beta**counts) if beta > 0 else torch.ones_like(counts)
    return weights * (len(samples_per_class) / weights.sum())


def ldam_margins(samples_per_class: list[int], max_margin: float, like: Tensor) -> Tensor:
    """LDAM margins m_c proportional to n_c^(-1/4), the largest equal to ``max_margin`` (Cao et al. 2019).

    A zero count is treated as one sample, so no margin is infinite.
    """
    counts = class_tensor(samples_per_class, like).clamp_min(1.0)
    margins = counts.pow(-0.25)
    return margins * (max_margin / margins.max())


# ------------------------------------------------------------------------------------------------------ modules


class _IgnoreIndexParams(LossParams):
    ignore_index: IgnoreIndex = Field(
        -100, description="Target value whose entries are skipped (torch's default -100)."
    )
    reduction: Reduction = ReductionField


class CrossEntropyParams(_IgnoreIndexParams):
    weight: list[NonNegative] | None = Field(
        None, description="Per-class rescaling weights (C); mean divides by the sum of the targets' weights."
    )
    label_smoothing: float = Field(
        0.0, ge=0, le=1, description="Share e of the target mass spread uniformly."
    )


@register_loss(
    "cross_entropy",
    heads=_MULTICLASS_DENSE,
    input=_LOGITS,
    target=_INDICES,
    reference="torch.nn.CrossEntropyLoss; label smoothing: Szegedy et al. (2016), Rethinking the Inception "
    "Architecture",
    _builtin=True,
)
class CrossEntropyLoss(CatalogLoss):
    """Cross-entropy on logits: (1-e) w_y (-log p_y) + (e/C) sum_c w_c (-log p_c).

    The default multiclass loss, and the pixel-wise loss of segmentation heads ((N, C, *spatial) logits
    against (N, *spatial) indices; with Dice in ``dice_ce`` or ``compound``). With ``weight``, 'mean' divides
    by the sum of the valid targets' weights (torch's convention); when every target is ignored the mean is 0.
    Wraps ``torch.nn.functional.cross_entropy``.
    """

    Params = CrossEntropyParams
    tensor_format = _SOFTMAX

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_class_count(p.weight, input.shape[1], "cross_entropy", "weight")
        return cross_entropy(
            input, target, class_tensor(p.weight, input), p.ignore_index, p.label_smoothing, p.reduction
        )


class NLLParams(_IgnoreIndexParams):
    weight: list[NonNegative] | None = Field(
        None, description="Per-class rescaling weights (C); mean divides by the sum of the targets' weights."
    )


@register_loss(
    "nll",
    heads=_MULTICLASS,
    input="log-probabilities (N, C) or (N, C, d1, ...), e.g. from log_softmax",
    target=_INDICES,
    reference="torch.nn.NLLLoss",
    _builtin=True,
)
class NLLLoss(CatalogLoss):
    """Negative log-likelihood of log-probabilities: -w_y log p_y.

    For models whose head already ends in ``log_softmax``. 'mean' divides by the sum of the valid targets'
    weights. Wraps ``torch.nn.functional.nll_loss``.
    """

    Params = NLLParams
    tensor_format = TensorFormat.of("log_probs", "class_indices")

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_class_count(p.weight, input.shape[1], "nll", "weight")
        weight = class_tensor(p.weight, input)
        safe, valid = _checked_targets(input, target, p.ignore_index, "nll")
        per_entry = F.nll_loss(_class_last(input, "nll"), safe, weight=weight, reduction="none")
        denominator = None if weight is None else torch.where(valid, weight[safe], 0.0).sum()
        return _finish(per_entry, valid, p.reduction, target.shape, denominator)


class BCEParams(LossParams):
    weight: list[NonNegative] | None = Field(
        None, description="Per-label rescaling weights (one per column of dim 1, or one for a 1-D input)."
    )
    pos_weight: list[NonNegative] | None = Field(
        None, description="Per-label weight of positives, typically n_neg / n_pos."
    )
    ignore_index: IgnoreIndex | None = Field(
        None, description="Target value whose entries are skipped (off by default)."
    )
    reduction: Reduction = ReductionField


@register_loss(
    "bce",
    heads=("binary", "multilabel", "segmentation"),
    input=_BINARY_LOGITS,
    target="0/1 (or soft, in [0, 1]) targets, same shape as input",
    reference="torch.nn.BCEWithLogitsLoss",
    _builtin=True,
)
class BCELoss(CatalogLoss):
    """Binary cross-entropy on logits: -w [pw y log s(x) + (1 - y) log(1 - s(x))].

    The default binary and multilabel loss; ``pos_weight = n_neg / n_pos`` re-balances rare positives. Per-label
    lists broadcast along dim 1. 'mean' divides by the count of valid elements. Wraps
    ``torch.nn.functional.binary_cross_entropy_with_logits``.
    """

    Params = BCEParams
    tensor_format = _SIGMOID

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_same_shape(input, target, "bce")
        labels = input.shape[1] if input.dim() >= 2 else 1
        check_class_count(p.weight, labels, "bce", "weight")
        check_class_count(p.pos_weight, labels, "bce", "pos_weight")
        valid = (
            target != p.ignore_index
            if p.ignore_index is not None
            else torch.ones_like(target, dtype=torch.bool)
        )
        y = torch.where(valid, target, torch.zeros_like(target)).to(input.dtype)
        weight, pos_weight = (
            None if values is None else _along_class_dim(class_tensor(values, input), input)
            for values in (p.weight, p.pos_weight)
        )
        per_entry = F.binary_cross_entropy_with_logits(
            input, y, weight=weight, pos_weight=pos_weight, reduction="none"
        )
        return _finish(per_entry, valid, p.reduction, target.shape)


class FocalParams(_IgnoreIndexParams):
    gamma: float = Field(2.0, ge=0, description="Focusing exponent; 0 gives cross-entropy.")
    alpha: list[NonNegative] | None = Field(
        None,
        description="Per-class weights (C). A scalar a as kornia/MONAI use it means [1-a, a, ..., a]; write "
        "that list out.",
    )
    mean_over: Literal["samples", "elements"] = Field(
        "samples",
        description="'mean' divides by valid targets ('samples') or by valid targets x C ('elements').",
    )


@register_loss(
    "focal",
    heads=_MULTICLASS_DENSE,
    input=_LOGITS,
    target=_INDICES,
    reference="Lin et al. (2017), Focal Loss for Dense Object Detection, ICCV",
    _builtin=True,
)
class FocalLoss(CatalogLoss):
    """Softmax focal loss: -alpha_y (1 - p_y)^gamma log p_y.

    Down-weights easy examples so training concentrates on hard ones; gamma = 0 without alpha is
    cross-entropy. ``alpha`` is always a per-class list. Avoid under label noise (it up-weights the hard,
    often mislabelled, examples). Pixel-wise on segmentation heads, it is the focal half of Dice + focal
    (a ``compound`` loss).

    Example: ``FocalLoss(gamma=0.0)(x, y)`` equals ``torch.nn.functional.cross_entropy(x, y)``.
    """

    Params = FocalParams
    tensor_format = _SOFTMAX

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_class_count(p.alpha, input.shape[1], "focal", "alpha")
        return focal_loss(
            input, target, p.gamma, class_tensor(p.alpha, input), p.ignore_index, p.mean_over, p.reduction
        )


class BinaryFocalParams(LossParams):
    gamma: float = Field(2.0, ge=0, description="Focusing exponent; 0 gives (alpha-weighted) BCE.")
    alpha: float | None = Field(
        0.25, ge=0, le=1, description="Weight of positives (negatives get 1 - alpha); null for no weighting."
    )
    ignore_index: IgnoreIndex | None = Field(
        None, description="Target value whose entries are skipped (off by default)."
    )
    reduction: Reduction = ReductionField


@register_loss(
    "binary_focal",
    heads=("binary", "multilabel", "segmentation"),
    input=_BINARY_LOGITS,
    target=_BINARY_TARGET,
    reference="Lin et al. (2017), Focal Loss for Dense Object Detection, ICCV; torchvision.ops.sigmoid_focal_loss",
    _builtin=True,
)
class BinaryFocalLoss(CatalogLoss):
    """Sigmoid focal loss: -a_t (1 - p_t)^gamma log p_t, a_t = alpha for positives and 1 - alpha for negatives.

    For rare positives in binary and multilabel heads. Defaults follow the paper (gamma 2, alpha 0.25).
    'mean' divides by the count of valid elements.
    """

    Params = BinaryFocalParams
    tensor_format = _SIGMOID

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        return binary_focal_loss(input, target, p.gamma, p.alpha, p.ignore_index, p.reduction)


class ClassBalancedParams(_IgnoreIndexParams):
    samples_per_class: list[Count] = Field(min_length=2, description="Dataset-level count of each class (C).")
    beta: float = Field(0.9999, ge=0, lt=1, description="Effective-number beta; 0 gives uniform weights.")
    gamma: float = Field(0.0, ge=0, description="Focal exponent; 0 gives re-weighted cross-entropy.")
    activation: Literal["softmax", "sigmoid"] = Field(
        "softmax", description="'softmax': one class per sample; 'sigmoid': one-vs-all BCE over C columns."
    )


@register_loss(
    "class_balanced",
    heads=("multiclass", "binary"),
    input=_LOGITS,
    target=_INDICES,
    reference="Cui et al. (2019), Class-Balanced Loss Based on Effective Number of Samples, CVPR",
    _builtin=True,
)
class ClassBalancedLoss(CatalogLoss):
    """Class-balanced loss: w_y * focal_gamma(x, y), w_c = (1 - beta) / (1 - beta^n_c), normalised to sum C.

    Re-weights by the effective number of samples. gamma = 0 with softmax is class-balanced cross-entropy;
    gamma > 0 is class-balanced focal. With sigmoid the loss is summed over the C one-vs-all columns. 'mean'
    divides by the number of valid targets, as the paper's code does. Zero counts never give NaN.
    """

    Params = ClassBalancedParams
    tensor_format = _SOFTMAX

    @classmethod
    def format_for(cls, params: ClassBalancedParams) -> TensorFormat:
        # sigmoid: one-vs-all logits over the C columns, still against class indices
        return (
            _SOFTMAX if params.activation == "softmax" else TensorFormat.of("sigmoid_logits", "class_indices")
        )

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_class_count(p.samples_per_class, input.shape[1], "class_balanced", "samples_per_class")
        weights = class_balanced_weights(p.samples_per_class, p.beta, input)
        if p.activation == "softmax":
            return focal_loss(input, target, p.gamma, weights, p.ignore_index, "samples", p.reduction)
        logits = _class_last(input, "class_balanced")
        safe, valid = _checked_targets(input, target, p.ignore_index, "class_balanced")
        one_hot = F.one_hot(safe, input.shape[1]).to(logits.dtype)
        per_column = binary_focal_loss(logits, one_hot, p.gamma, None, None, "none")
        return _finish(per_column.sum(dim=1) * weights[safe], valid, p.reduction, target.shape)


class LDAMParams(_IgnoreIndexParams):
    samples_per_class: list[Count] = Field(min_length=2, description="Dataset-level count of each class (C).")
    max_margin: float = Field(
        0.5, gt=0, description="Margin of the rarest class; others scale as n_c^(-1/4)."
    )
    scale: float = Field(30.0, gt=0, description="Logit scale s (the paper uses normalised, cosine logits).")
    weight: list[NonNegative] | None = Field(
        None, description="Per-class weights (C), e.g. for deferred re-weighting (DRW) late in training."
    )


@register_loss(
    "ldam",
    heads=("multiclass",),
    input=_LOGITS,
    target=_INDICES,
    reference="Cao et al. (2019), Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS",
    _builtin=True,
)
class LDAMLoss(CatalogLoss):
    """LDAM: CE(s (x - m_y e_y), y), margins m_c proportional to n_c^(-1/4), largest equal to ``max_margin``.

    Enforces larger margins for rare classes. The paper pairs it with deferred re-weighting (DRW): train with
    ``weight`` unset, then switch to class-balanced weights for the last epochs (a schedule the training loop
    owns). 'mean' divides as cross-entropy does.
    """

    Params = LDAMParams
    tensor_format = _SOFTMAX

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_class_count(p.samples_per_class, input.shape[1], "ldam", "samples_per_class")
        check_class_count(p.weight, input.shape[1], "ldam", "weight")
        margins = ldam_margins(p.samples_per_class, p.max_margin, input)
        safe, _ = _checked_targets(input, target, p.ignore_index, "ldam")
        one_hot = F.one_hot(safe.view(target.shape), input.shape[1]).movedim(-1, 1).to(input.dtype)
        shifted = p.scale * (input - one_hot * _along_class_dim(margins, input))
        return cross_entropy(shifted, target, class_tensor(p.weight, input), p.ignore_index, 0.0, p.reduction)


class LogitAdjustedParams(_IgnoreIndexParams):
    samples_per_class: list[Count] = Field(min_length=2, description="Dataset-level count of each class (C).")
    tau: float = Field(
        1.0, ge=0, description="Adjustment strength; 0 gives cross-entropy, 1 Balanced Softmax."
    )


@register_loss(
    "logit_adjusted",
    heads=("multiclass", "binary"),
    input=_LOGITS,
    target=_INDICES,
    reference="Menon et al. (2021), Long-tail learning via logit adjustment, ICLR; Ren et al. (2020), Balanced "
    "Meta-Softmax",
    _builtin=True,
)
class LogitAdjustedLoss(CatalogLoss):
    """Logit-adjusted cross-entropy: CE(x + tau log pi, y), pi the class priors from ``samples_per_class``.

    Fisher-consistent for the balanced error; tau = 1 equals Balanced Softmax. Predict with the raw logits
    (the adjustment is training-only). Zero counts are treated as one sample so log pi stays finite.
    """

    Params = LogitAdjustedParams
    tensor_format = _SOFTMAX

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_class_count(p.samples_per_class, input.shape[1], "logit_adjusted", "samples_per_class")
        log_prior = torch.log(counts_to_priors(p.samples_per_class, input))
        adjusted = input + p.tau * _along_class_dim(log_prior, input)
        return cross_entropy(adjusted, target, None, p.ignore_index, 0.0, p.reduction)


class Poly1Params(_IgnoreIndexParams):
    epsilon: float = Field(1.0, ge=-1, description="Coefficient of the first polynomial term (1 - p_y).")


@register_loss(
    "poly1",
    heads=_MULTICLASS,
    input=_LOGITS,
    target=_INDICES,
    reference="Leng et al. (2022), PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions, "
    "ICLR",
    _builtin=True,
)
class Poly1Loss(CatalogLoss):
    """Poly-1: -log p_y + epsilon (1 - p_y).

    Cross-entropy with its leading polynomial coefficient adjusted; epsilon = 0 is cross-entropy.
    """

    Params = Poly1Params
    tensor_format = _SOFTMAX

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        safe, valid = _checked_targets(input, target, p.ignore_index, "poly1")
        log_pt, _ = _log_pt_terms(_class_last(input, "poly1"), safe)
        return _finish(-log_pt + p.epsilon * (1.0 - torch.exp(log_pt)), valid, p.reduction, target.shape)


class GCEParams(_IgnoreIndexParams):
    q: float = Field(0.7, gt=0, le=1, description="Truncation exponent; q -> 0 approaches CE, q = 1 is MAE.")


@register_loss(
    "gce",
    heads=_MULTICLASS,
    input=_LOGITS,
    target=_INDICES,
    reference="Zhang & Sabuncu (2018), Generalized Cross Entropy Loss for Training Deep Neural Networks with "
    "Noisy Labels, NeurIPS",
    _builtin=True,
)
class GCELoss(CatalogLoss):
    """Generalized cross-entropy: (1 - p_y^q) / q, with p_y^q = exp(q log p_y).

    Robust to label noise (10-40%): bounded like MAE, trains like CE. q = 0.7 is the paper's default.
    """

    Params = GCEParams
    tensor_format = _SOFTMAX

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        safe, valid = _checked_targets(input, target, p.ignore_index, "gce")
        log_pt, _ = _log_pt_terms(_class_last(input, "gce"), safe)
        return _finish((1.0 - torch.exp(p.q * log_pt)) / p.q, valid, p.reduction, target.shape)


class SCEParams(_IgnoreIndexParams):
    alpha: float = Field(0.1, ge=0, description="Weight of the cross-entropy term.")
    beta: float = Field(1.0, ge=0, description="Weight of the reverse cross-entropy term.")
    log_zero: float = Field(-4.0, lt=0, description="Value A that stands for log 0 in the reverse term.")


@register_loss(
    "sce",
    heads=_MULTICLASS,
    input=_LOGITS,
    target=_INDICES,
    reference="Wang et al. (2019), Symmetric Cross Entropy for Robust Learning with Noisy Labels, ICCV",
    _builtin=True,
)
class SCELoss(CatalogLoss):
    """Symmetric cross-entropy: alpha CE + beta RCE, RCE = -sum_c p_c log q_c = -A (1 - p_y).

    q is the one-hot label with log 0 taken as A = ``log_zero``. For noisy labels; alpha 0.1, beta 1 are the
    paper's CIFAR-10 settings.
    """

    Params = SCEParams
    tensor_format = _SOFTMAX

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        safe, valid = _checked_targets(input, target, p.ignore_index, "sce")
        log_pt, _ = _log_pt_terms(_class_last(input, "sce"), safe)
        reverse = -p.log_zero * (1.0 - torch.exp(log_pt))
        return _finish(-p.alpha * log_pt + p.beta * reverse, valid, p.reduction, target.shape)


class ASLParams(LossParams):
    gamma_neg: float = Field(4.0, ge=0, description="Focusing exponent of negatives.")
    gamma_pos: float = Field(1.0, ge=0, description="Focusing exponent of positives.")
    clip: float = Field(0.05, ge=0, lt=1, description="Probability margin m shifted off negatives.")
    ignore_index: IgnoreIndex | None = Field(
        None, description="Target value whose entries are skipped (off by default)."
    )
    reduction: Reduction = ReductionField


@register_loss(
    "asl",
    heads=("multilabel", "binary"),
    input=_BINARY_LOGITS,
    target=_BINARY_TARGET,
    reference="Ridnik et al. (2021), Asymmetric Loss For Multi-Label Classification, ICCV",
    _builtin=True,
)
class AsymmetricLoss(CatalogLoss):
    """Asymmetric loss: -[y (1-p)^g+ log p + (1-y) p_m^g- log(1 - p_m)], p_m = max(p - clip, 0).

    For multilabel heads with many rare labels: negatives are focused harder and very easy ones discarded.
    'mean' divides by the number of valid elements; the paper's code returns the sum (``reduction='sum'``).
    """

    Params = ASLParams
    tensor_format = _SIGMOID

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        return asymmetric_loss(input, target, p.gamma_neg, p.gamma_pos, p.clip, p.ignore_index, p.reduction)
