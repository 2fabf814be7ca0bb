"""Losses between predicted and target distributions."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from advisor.losses._base import CatalogLoss, LossParams, TensorFormat, check_same_shape, reduce_loss
from advisor.losses.registry import register_loss


class KLDivParams(LossParams):
    input_format: Literal["log_probs", "logits"] = Field(
        "log_probs",
        description="'log_probs' as torch.nn.KLDivLoss expects; 'logits' applies log_softmax on dim 1.",
    )
    log_target: bool = Field(
        False, description="The target holds log-probabilities instead of probabilities."
    )
    reduction: Literal["none", "mean", "sum", "batchmean"] = Field(
        "batchmean",
        description="'batchmean' divides the sum by N and is the true KL; 'mean' divides by every element (N x K).",
    )


@register_loss(
    "kl_div",
    heads=("distribution",),
    input="log-probabilities (or logits with input_format='logits') (N, K, ...), distribution over dim 1",
    target="probabilities (log-probabilities with log_target), same shape as input",
    reference="Kullback & Leibler (1951); torch.nn.KLDivLoss; Hinton et al. (2015), Distilling the Knowledge in "
    "a Neural Network",
    _builtin=True,
)
class KLDivLoss(CatalogLoss):
    """Kullback-Leibler divergence KL(target || prediction) = sum_k t_k (log t_k - log q_k).

    For soft targets: distillation, label distributions, histogram heads. Terms with t_k = 0 contribute 0.
    Same values as ``torch.nn.functional.kl_div`` except that a log-target of -inf gives 0, not NaN.
    """

    Params = KLDivParams
    tensor_format = TensorFormat.of("log_probs", "like_input")

    @classmethod
    def format_for(cls, params: KLDivParams) -> TensorFormat:
        reads = "log_probs" if params.input_format == "log_probs" else "softmax_logits"
        return TensorFormat.of(reads, "log_like_input" if params.log_target else "like_input")

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        p = self.params
        check_same_shape(input, target, "kl_div")
        log_q = input.log_softmax(1) if p.input_format == "logits" else input
        return kl_div_loss(log_q, target, log_target=p.log_target, reduction=p.reduction)


def kl_div_loss(
    log_q: Tensor,
    target: Tensor,
    *,
    log_target: bool = False,
    reduction: Literal["none", "mean", "sum", "batchmean"] = "batchmean",
) -> Tensor:
    """Pointwise t (log t - log q) with 0 log 0 = 0 for both target forms, then the reduction.

    torch's ``kl_div`` gives NaN for a log-target of -inf (0 * -inf); here such a term is exactly 0, with a
    zero gradient.
    """
    if log_target:
        zero = torch.isneginf(target)
        safe = torch.where(zero, torch.zeros_like(target), target)
        pointwise = torch.where(zero, torch.zeros_like(log_q), torch.exp(safe) * (safe - log_q))
    else:
        pointwise = torch.xlogy(target, target) - target * log_q
    if reduction == "batchmean":
        return pointwise.sum() / log_q.shape[0]
    return reduce_loss(pointwise, reduction)
