"""Segmentation losses: Dice, Dice + CE, Tversky, focal Tversky, Jaccard and Lovasz.

Conventions shared by every loss here:

* ``input`` is (N, C, *spatial) logits (or probabilities with ``activation='none'``).
* ``target`` is class indices (N, *spatial) (for C = 1 with sigmoid: the 0/1 mask), or a one-hot / soft
  target with the input's shape. ``ignore_index`` (index targets only) removes pixels from every sum.
* Overlap terms are summed per sample and class (``batch=False``, values (N, C)) or pooled over the batch
  (``batch=True``, values (C,)). ``include_background=False`` drops channel 0.
* ``empty``: how a class absent from the target is scored. 'smooth' lets the smoothing constants decide (an
  empty prediction then scores loss 0 and any false positive about 1); 'skip' leaves it out of the mean.
* 'mean' averages the counted values; 'none' returns them (skipped ones as 0).
* ``weight`` (Dice, Jaccard, Tversky, focal Tversky; ``dice_weight`` of Dice + CE): per-class weights w_c, one
  per input channel (dim 1; channel 0's entry is unused when ``include_background`` is False). With k_nc = 1
  for a counted value L_nc (0 for a skipped one), 'mean' is the weighted mean
  sum_nc w_c k_nc L_nc / sum_nc w_c k_nc, 'sum' is sum_nc w_c k_nc L_nc and 'none' returns w_c k_nc L_nc.
  All weights 1 is the unweighted loss. (MONAI's DiceLoss multiplies by its weights but still divides by the
  count of values, so its 'mean' scales with them.)
* Index targets are checked to lie in [0, C) on every call unless :func:`advisor.losses.checks` turns that
  off.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from pydantic.fields import FieldInfo
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
    checks_enabled,
    class_tensor,
    safe_divide,
)
from advisor.losses.classification import NonNegative, cross_entropy
from advisor.losses.registry import register_loss

Activation = Literal["softmax", "sigmoid", "none"]
_INPUT = "logits (N, C, *spatial); probabilities with activation='none'"
_TARGET = "class indices (N, *spatial), or one-hot/soft targets shaped like the input"
_HEADS = ("segmentation",)
_DENSE_TARGETS = ("class_indices", "like_input")
_READS = {"softmax": "softmax_logits", "sigmoid": "sigmoid_logits", "none": "probabilities"}


class _Overlap:
    """Soft overlap terms of one batch, summed per (sample, class) or per class."""

    def __init__(self, tp: Tensor, sum_p: Tensor, sum_g: Tensor) -> None:
        self.tp, self.sum_p, self.sum_g = tp, sum_p, sum_g

    @property
    def fp(self) -> Tensor:
        return self.sum_p - self.tp

    @property
    def fn(self) -> Tensor:
        return self.sum_g - self.tp


def _probabilities_and_targets(
    input: Tensor, target: Tensor, activation: Activation, ignore_index: int | None, loss: str
) -> tuple[Tensor, Tensor, Tensor]:
    """(N, C, P) probabilities, (N, C, P) one-hot targets and the (N, 1, P) mask of counted pixels."""
    if input.dim() < 3:
        raise LossInputError(
            FieldViolation("input", f"{loss}: input must be (N, C, *spatial), got {tuple(input.shape)}")
        )
    n, c = input.shape[:2]
    if activation == "softmax" and c < 2:
        raise LossInputError(
            FieldViolation("input", f"{loss}: softmax needs C >= 2 channels; use sigmoid for C = 1")
        )
    logits = input.reshape(n, c, -1)
    probs = {"softmax": lambda x: x.softmax(1), "sigmoid": torch.sigmoid, "none": lambda x: x}[activation](
        logits
    )
    if target.shape == input.shape:
        return probs, target.reshape(n, c, -1).to(probs.dtype), torch.ones_like(probs[:, :1])
    if target.shape != (n, *input.shape[2:]) or target.is_floating_point():
        raise LossInputError(
            FieldViolation(
                "target",
                f"{loss}: target must be integer indices {(n, *input.shape[2:])} or shaped like "
                f"the input {tuple(input.shape)}, got {target.dtype} {tuple(target.shape)}",
            )
        )
    flat = target.reshape(n, -1)
    valid = flat != ignore_index if ignore_index is not None else torch.ones_like(flat, dtype=torch.bool)
    safe = torch.where(valid, flat, torch.zeros_like(flat))
    limit = max(c, 2)
    if checks_enabled() and bool(((safe < 0) | (safe >= limit)).any()):
        raise LossInputError(FieldViolation("target", f"{loss}: class indices must lie in [0, {limit - 1}]"))
    one_hot = safe[:, None].to(probs.dtype) if c == 1 else F.one_hot(safe, c).movedim(-1, 1).to(probs.dtype)
    mask = valid[:, None].to(probs.dtype)
    return probs * mask, one_hot * mask, mask


def overlap_terms(
    probs: Tensor, one_hot: Tensor, *, batch: bool, include_background: bool, squared_pred: bool = False
) -> _Overlap:
    """Sum TP, prediction and target mass over pixels (and over the batch when ``batch``)."""
    if not include_background:
        if probs.shape[1] == 1:
            raise LossInputError(FieldViolation("params.include_background", "False needs C >= 2 channels"))
        probs, one_hot = probs[:, 1:], one_hot[:, 1:]
    dims = (0, 2) if batch else (2,)
    power = 2 if squared_pred else 1
    return _Overlap((probs * one_hot).sum(dims), (probs**power).sum(dims), (one_hot**power).sum(dims))


def class_weights(
    weight: list[float] | None, input: Tensor, include_background: bool, loss: str, param: str = "weight"
) -> Tensor | None:
    """Per-class weights as a tensor over the scored channels: one entry per input channel is required, and
    channel 0's is dropped when the background is not scored."""
    check_class_count(weight, input.shape[1], loss, param)
    values = class_tensor(weight, input)
    return values if values is None or include_background else values[1:]


def _reduce_classes(
    values: Tensor, overlap: _Overlap, empty: str, reduction: Reduction, weight: Tensor | None = None
) -> Tensor:
    """Reduce per-class values (N, C) or (C,): the (weighted) mean over counted values, their sum, or them.

    With weights w_c and k = 1 for counted values: 'mean' = sum w_c k L / sum w_c k (0 if that is 0).
    """
    counted = overlap.sum_g > 0 if empty == "skip" else torch.ones_like(values, dtype=torch.bool)
    share = counted.to(values.dtype) if weight is None else counted * weight
    values = torch.where(counted, values, torch.zeros_like(values))
    if weight is not None:
        values = values * weight
    if reduction == "none":
        return values
    return values.sum() if reduction == "sum" else safe_divide(values.sum(), share.sum())


def dice_score(o: _Overlap, smooth_nr: float, smooth_dr: float) -> Tensor:
    """(2 TP + s_nr) / (sum p + sum g + s_dr)."""
    return safe_divide(2.0 * o.tp + smooth_nr, o.sum_p + o.sum_g + smooth_dr)


def jaccard_score(o: _Overlap, smooth_nr: float, smooth_dr: float) -> Tensor:
    """(TP + s_nr) / (sum p + sum g - TP + s_dr)."""
    return safe_divide(o.tp + smooth_nr, o.sum_p + o.sum_g - o.tp + smooth_dr)


def tversky_score(
    o: _Overlap, fp_weight: float, fn_weight: float, smooth_nr: float, smooth_dr: float
) -> Tensor:
    """(TP + s_nr) / (TP + a FP + b FN + s_dr), a weighting false positives and b false negatives."""
    return safe_divide(o.tp + smooth_nr, o.tp + fp_weight * o.fp + fn_weight * o.fn + smooth_dr)


class SegmentationParams(LossParams):
    activation: Activation = Field(
        "softmax",
        description="Turns logits into probabilities: 'softmax' over C, "
        "'sigmoid' per channel, 'none' if the input is already probabilities.",
    )
    include_background: bool = Field(True, description="Score channel 0 too (nnU-Net leaves it out).")
    batch: bool = Field(False, description="Pool overlap terms over the batch before the ratio (batch Dice).")
    smooth_nr: float = Field(1e-5, ge=0, description="Added to the numerator.")
    smooth_dr: float = Field(1e-5, ge=0, description="Added to the denominator.")
    empty: Literal["smooth", "skip"] = Field(
        "smooth",
        description="A class absent from the target: 'smooth' "
        "scores it through the smoothing terms, 'skip' leaves it out.",
    )
    ignore_index: IgnoreIndex | None = Field(
        None, description="Index-target value of pixels to leave out (off by default)."
    )
    reduction: Reduction = ReductionField


def _class_weight_field(scored: str) -> FieldInfo:
    return Field(
        None,
        description=f"Per-class weights of the {scored} (one per input channel; channel 0's is unused without "
        "include_background): 'mean' becomes sum w_c L_c / sum w_c over counted values.",
    )


class _OverlapLoss(CatalogLoss):
    """Shared forward of the overlap losses: probabilities, overlap terms, per-class loss, reduction."""

    tensor_format = TensorFormat.of("softmax_logits", *_DENSE_TARGETS)

    @classmethod
    def format_for(cls, params: SegmentationParams) -> TensorFormat:
        return TensorFormat.of(_READS[params.activation], *_DENSE_TARGETS)

    def per_class(self, overlap: _Overlap) -> Tensor:
        raise NotImplementedError

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        probs, one_hot, _ = _probabilities_and_targets(
            input, target, p.activation, p.ignore_index, self.loss_name
        )
        weight = class_weights(p.weight, input, p.include_background, self.loss_name)
        overlap = overlap_terms(
            probs,
            one_hot,
            batch=p.batch,
            include_background=p.include_background,
            squared_pred=getattr(p, "squared_pred", False),
        )
        return _reduce_classes(self.per_class(overlap), overlap, p.empty, p.reduction, weight)


class _SquaredPredParams(SegmentationParams):
    squared_pred: bool = Field(False, description="Square p and g in the denominator (the V-Net variant).")


class DiceParams(_SquaredPredParams):
    weight: list[NonNegative] | None = _class_weight_field("Dice values")


@register_loss(
    "dice",
    heads=_HEADS,
    input=_INPUT,
    target=_TARGET,
    reference="Milletari et al. (2016), V-Net, 3DV; MONAI DiceLoss",
    _builtin=True,
)
class DiceLoss(_OverlapLoss):
    """Soft Dice loss: 1 - (2 sum p g + s_nr) / (sum p + sum g + s_dr), per sample and class (or batch).

    Optimises overlap directly, insensitive to the background's size. A perfect prediction gives 0. With
    per-class ``weight`` w_c, 'mean' is the weighted mean sum_c w_c L_c / sum_c w_c (over samples too when
    ``batch`` is False), e.g. to favour a rare structure without changing the loss's scale.
    """

    Params = DiceParams

    def per_class(self, overlap: _Overlap) -> Tensor:
        return 1.0 - dice_score(overlap, self.params.smooth_nr, self.params.smooth_dr)


@register_loss(
    "jaccard",
    heads=_HEADS,
    input=_INPUT,
    target=_TARGET,
    reference="Rahman & Wang (2016), Optimizing Intersection-Over-Union in Deep Neural Networks; MONAI DiceLoss "
    "(jaccard=True)",
    _builtin=True,
)
class JaccardLoss(_OverlapLoss):
    """Soft Jaccard (IoU) loss: 1 - (sum p g + s_nr) / (sum p + sum g - sum p g + s_dr).

    Matches an IoU metric; otherwise behaves like Dice.
    """

    Params = DiceParams

    def per_class(self, overlap: _Overlap) -> Tensor:
        return 1.0 - jaccard_score(overlap, self.params.smooth_nr, self.params.smooth_dr)


class TverskyParams(SegmentationParams):
    weight: list[NonNegative] | None = _class_weight_field("Tversky values")
    fp_weight: float = Field(
        0.3, ge=0, description="Weight of false positives (alpha in Salehi et al., MONAI)."
    )
    fn_weight: float = Field(
        0.7, ge=0, description="Weight of false negatives (beta in Salehi et al., MONAI)."
    )


@register_loss(
    "tversky",
    heads=_HEADS,
    input=_INPUT,
    target=_TARGET,
    reference="Salehi et al. (2017), Tversky loss function for image segmentation using 3D fully convolutional "
    "deep networks",
    _builtin=True,
)
class TverskyLoss(_OverlapLoss):
    """Tversky loss: 1 - (TP + s_nr) / (TP + a FP + b FN + s_dr), a = ``fp_weight``, b = ``fn_weight``.

    Weighting false negatives above false positives (0.3 / 0.7) favours recall on tiny structures;
    a = b = 0.5 is Dice. Parameters are named by what they weight (one widely copied code base swaps alpha and
    beta).
    """

    Params = TverskyParams

    def per_class(self, overlap: _Overlap) -> Tensor:
        p = self.params
        return 1.0 - tversky_score(overlap, p.fp_weight, p.fn_weight, p.smooth_nr, p.smooth_dr)


class FocalTverskyParams(TverskyParams):
    gamma: float = Field(
        0.75, gt=0, description="Exponent on (1 - TI); 0.75 equals the paper's 1/gamma, gamma 4/3."
    )


@register_loss(
    "focal_tversky",
    heads=_HEADS,
    input=_INPUT,
    target=_TARGET,
    reference="Abraham & Khan (2019), A Novel Focal Tversky Loss Function with Improved Attention U-Net for Lesion "
    "Segmentation, ISBI",
    _builtin=True,
)
class FocalTverskyLoss(_OverlapLoss):
    """Focal Tversky loss: (1 - TI)^gamma, TI the Tversky index.

    gamma < 1 raises the loss of classes that are already fairly well segmented less than of poor ones,
    pushing small lesions. (1 - TI) is clamped at the smallest normal float so gamma < 1 has a finite gradient.
    """

    Params = FocalTverskyParams

    def per_class(self, overlap: _Overlap) -> Tensor:
        p = self.params
        distance = 1.0 - tversky_score(overlap, p.fp_weight, p.fn_weight, p.smooth_nr, p.smooth_dr)
        return distance.clamp_min(torch.finfo(distance.dtype).tiny) ** p.gamma


class DiceCEParams(_SquaredPredParams):
    dice_weight: list[NonNegative] | None = _class_weight_field("Dice term's values")
    lambda_dice: float = Field(1.0, ge=0, description="Weight of the Dice term.")
    lambda_ce: float = Field(1.0, ge=0, description="Weight of the cross-entropy term.")
    ce_weight: list[NonNegative] | None = Field(
        None,
        description="Per-class weights (C) of the CE term; the CE "
        "term always covers every channel, background included.",
    )
    reduction: Literal["mean", "sum"] = Field(
        "mean",
        description="Applied to both terms: 'mean' averages Dice "
        "values and CE over counted pixels; 'sum' sums both.",
    )

    @model_validator(mode="after")
    def _needs_logits(self) -> DiceCEParams:
        if self.activation == "none":
            raise ValueError(
                "activation 'none' is not allowed: the CE term needs logits; use softmax or sigmoid"
            )
        return self


@register_loss(
    "dice_ce",
    heads=_HEADS,
    input="logits (N, C, *spatial)",
    target=_TARGET,
    reference="Isensee et al. (2021), nnU-Net, Nature Methods; MONAI DiceCELoss",
    _builtin=True,
)
class DiceCELoss(CatalogLoss):
    """lambda_dice Dice + lambda_ce CE: cross-entropy (softmax) or BCE (sigmoid) plus soft Dice.

    nnU-Net's default (1:1, batch Dice, background left out of Dice). ``include_background`` applies to the
    Dice term only; the CE term covers every channel (down-weight background with ``ce_weight``). The CE
    term's 'mean' is over counted pixels (as ``cross_entropy`` divides, with ``ce_weight``). ``dice_weight``
    makes the Dice term's 'mean' the weighted mean sum_c w_c L_c / sum_c w_c over its classes.
    """

    Params = DiceCEParams
    tensor_format = TensorFormat.of("softmax_logits", *_DENSE_TARGETS)

    @classmethod
    def format_for(cls, params: DiceCEParams) -> TensorFormat:
        return TensorFormat.of(_READS[params.activation], *_DENSE_TARGETS)

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        probs, one_hot, mask = _probabilities_and_targets(
            input, target, p.activation, p.ignore_index, "dice_ce"
        )
        weight = class_weights(p.dice_weight, input, p.include_background, "dice_ce", "dice_weight")
        overlap = overlap_terms(
            probs,
            one_hot,
            batch=p.batch,
            include_background=p.include_background,
            squared_pred=p.squared_pred,
        )
        dice = _reduce_classes(
            1.0 - dice_score(overlap, p.smooth_nr, p.smooth_dr), overlap, p.empty, p.reduction, weight
        )
        return p.lambda_dice * dice + p.lambda_ce * self._ce_term(input, target, one_hot, mask)

    def _ce_term(self, input: Tensor, target: Tensor, one_hot: Tensor, mask: Tensor) -> Tensor:
        p = self.params
        weight = class_tensor(p.ce_weight, input)
        if p.activation == "softmax" and target.shape != input.shape:
            ignore = -100 if p.ignore_index is None else p.ignore_index
            return cross_entropy(input, target, weight, ignore, 0.0, p.reduction)
        n, c = input.shape[:2]
        logits = input.reshape(n, c, -1)
        weight = 1.0 if weight is None else weight[:, None]
        if p.activation == "softmax":  # one-hot or soft targets: divide by the target mass times its weight,
            per_element = -(one_hot * logits.log_softmax(1) * weight) * mask  # as index targets do
            count = (one_hot * weight * mask).sum()
        else:
            per_element = (
                F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none") * weight * mask
            )
            count = mask.sum() * c
        return per_element.sum() if p.reduction == "sum" else safe_divide(per_element.sum(), count)


class LovaszParams(LossParams):
    variant: Literal["softmax", "hinge"] = Field(
        "softmax",
        description="'softmax': Lovasz-Softmax over C >= 2 "
        "classes; 'hinge': binary Lovasz hinge on one logit channel.",
    )
    classes: Literal["present", "all"] = Field(
        "present", description="Average over classes present in the target, or over all classes."
    )
    per_image: bool = Field(
        False, description="Compute per image and average, instead of over the whole batch."
    )
    ignore_index: IgnoreIndex | None = Field(
        None, description="Index-target value of pixels to leave out (off by default)."
    )
    reduction: Reduction = Field(
        "mean",
        description="Over images when per_image; 'none' then gives (N,). Without "
        "per_image every reduction gives the batch value.",
    )


def _lovasz_gradient(sorted_labels: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at labels sorted by decreasing error."""
    positives = sorted_labels.sum()
    intersection = positives - sorted_labels.cumsum(0)
    union = positives + (1.0 - sorted_labels).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax_flat(probs: Tensor, labels: Tensor, classes: str = "present") -> Tensor:
    """Lovasz-Softmax of (P, C) probabilities against (P,) labels, averaged over classes."""
    losses = []
    for c in range(probs.shape[1]):
        foreground = (labels == c).to(probs.dtype)
        if classes == "present" and not bool(foreground.any()):
            continue
        errors, order = (foreground - probs[:, c]).abs().sort(descending=True)
        losses.append(torch.dot(errors, _lovasz_gradient(foreground[order])))
    return torch.stack(losses).mean() if losses else probs.sum() * 0.0


def lovasz_hinge_flat(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary Lovasz hinge of (P,) logits against (P,) 0/1 labels."""
    if logits.numel() == 0:
        return logits.sum() * 0.0
    errors, order = (1.0 - logits * (2.0 * labels - 1.0)).sort(descending=True)
    return torch.dot(F.relu(errors), _lovasz_gradient(labels[order]))


@register_loss(
    "lovasz",
    heads=_HEADS,
    input="logits (N, C, *spatial); C = 1 for the hinge variant",
    target="class indices (N, *spatial) (0/1 for the hinge variant)",
    reference="Berman et al. (2018), The Lovasz-Softmax loss: A tractable surrogate for the optimization of the "
    "intersection-over-union measure in neural networks, CVPR",
    _builtin=True,
)
class LovaszLoss(CatalogLoss):
    """Lovasz loss: the Lovasz extension of the Jaccard loss, sum_i e_(i) g_i(sorted labels).

    A convex surrogate of IoU; best as a fine-tuning loss after Dice + CE when the metric is IoU. The
    softmax variant uses errors |1[y = c] - p_c|; the hinge variant uses max(0, 1 - x (2y - 1)).
    """

    Params = LovaszParams
    tensor_format = TensorFormat.of("softmax_logits", "class_indices")

    @classmethod
    def format_for(cls, params: LovaszParams) -> TensorFormat:
        # The hinge reads one binary logit per pixel (its sign is the prediction), as sigmoid losses do.
        return TensorFormat.of(
            "softmax_logits" if params.variant == "softmax" else "sigmoid_logits", "class_indices"
        )

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        activation = "softmax" if p.variant == "softmax" else "none"
        if p.variant == "hinge" and (input.dim() < 3 or input.shape[1] != 1):
            raise LossInputError(
                FieldViolation("input", "lovasz: the hinge variant needs input (N, 1, *spatial)")
            )
        scores, one_hot, mask = _probabilities_and_targets(
            input, target, activation, p.ignore_index, "lovasz"
        )
        labels = one_hot.argmax(1) if one_hot.shape[1] > 1 else one_hot[:, 0]
        keep = mask[:, 0].bool()
        images = (
            [(scores[i], labels[i], keep[i]) for i in range(input.shape[0])]
            if p.per_image
            else [(scores.movedim(0, 1).reshape(scores.shape[1], -1), labels.reshape(-1), keep.reshape(-1))]
        )
        values = torch.stack([self._flat(s[:, k].T, lab[k]) for s, lab, k in images])
        if not p.per_image:
            return values[0]
        return values if p.reduction == "none" else values.sum() if p.reduction == "sum" else values.mean()

    def _flat(self, scores: Tensor, labels: Tensor) -> Tensor:
        if self.params.variant == "hinge":
            return lovasz_hinge_flat(scores[:, 0], labels)
        return lovasz_softmax_flat(scores, labels, self.params.classes)
