"""How a trial model's raw output feeds each loss and becomes predictions for the metric.

A trial model ends in ``out_dim`` units (channels for dense heads). The adapter of a (head, loss) pair says
how many, turns the raw output into the loss's documented input, and turns it into predictions: class
probabilities, point values (and a variance or quantiles where the loss gives them), masks or waveforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from advisor.losses.families import LOSS_FAMILIES
from advisor.spec import LossSpec
from advisor.task import Head
from advisor.trials.kinds import trials_for

# Losses that read one logit per binary label (sigmoid) rather than one per class (softmax): the catalog's
# sigmoid family.
SIGMOID_LOSSES = {name for name, family in LOSS_FAMILIES.items() if family == "sigmoid"}


@dataclass(frozen=True)
class Adapter:
    """Output layout of one (head, loss) pair."""

    # softmax | sigmoid | point | mean_log_var | quantiles | log_rate | rate | distribution | dense | channels | wave;
    # channels: one sigmoid per output channel of a dense head whose classes overlap (multi-label masks), its
    # targets 0/1 channels shaped like the output (never a loss family's layout, which is tabular).
    kind: str
    out_dim: int
    log_probs_input: bool = False  # the loss takes log_softmax(output) (nll, kl_div with log_probs)
    quantiles: tuple[float, ...] = ()
    float_target: bool = False  # 0/1 labels as floats shaped like the output (bce-style losses)

    def loss_target(self, target: Tensor) -> Tensor:
        """The stored target (class indices, values, masks) in the form the loss expects."""
        if not self.float_target:
            return target
        target = target.to(torch.get_default_dtype())
        return target[:, None] if self.kind == "dense" else target

    def loss_input(self, output: Tensor) -> Tensor:
        """Raw output (B, out_dim[, ...]) -> the tensor the loss expects."""
        if self.log_probs_input:
            return output.log_softmax(1)
        if self.kind in ("sigmoid", "point", "log_rate") and self.out_dim == 1 and output.dim() == 2:
            return output[:, 0]
        if self.kind == "rate":
            return F.softplus(output[:, 0])
        return output

    def predict(self, output: Tensor) -> dict[str, Tensor]:
        """Predictions from raw output: 'proba' (classes), 'value' (+ 'variance' / 'quantiles'), 'mask', 'wave'."""
        if self.kind == "softmax":
            return {"proba": output.softmax(1)}
        if self.kind in ("sigmoid", "channels"):
            return {"proba": torch.sigmoid(output)}
        if self.kind == "distribution":
            return {"proba": output.softmax(1)}
        if self.kind == "point":
            return {"value": output[:, 0]}
        if self.kind == "mean_log_var":
            return {"value": output[:, 0], "variance": torch.exp(output[:, 1].clamp(-30, 30))}
        if self.kind == "quantiles":
            middle = min(range(len(self.quantiles)), key=lambda i: abs(self.quantiles[i] - 0.5))
            return {"value": output[:, middle], "quantiles": output}
        if self.kind == "log_rate":
            return {"value": torch.exp(output[:, 0].clamp(max=30))}
        if self.kind == "rate":
            return {"value": F.softplus(output[:, 0])}
        if self.kind == "dense":
            return {"proba": output.softmax(1) if self.out_dim > 1 else torch.sigmoid(output)}
        return {"wave": output}


def adapter_for(head: Head, spec: LossSpec) -> Adapter:
    """The output layout a trial model needs to train ``head`` with the loss ``spec`` (its kind's adapter)."""
    if (
        spec.loss == "compound"
    ):  # its terms read one output the same way (validated): a term's layout is its own
        terms = spec.params["terms"]
        term = next((t for t in terms if t["loss"] in SIGMOID_LOSSES), terms[0])
        return adapter_for(head, LossSpec(loss=term["loss"], params=term["params"]))
    return trials_for(head).adapter(head, spec)


# Losses whose 'mean' divides by a count of entries (or a per-sample constant), so pooling every seed's
# batch into one call keeps each member's gradient exact. Weighted means (cross-entropy's `weight`), masks
# pooled over the batch (batch Dice, Lovasz without per_image) and auraloss's spectral convergence are not.
_POOLABLE = {
    "mse", "l1", "huber", "smooth_l1", "log_cosh", "quantile", "poisson_nll", "gaussian_nll", "beta_nll",
    "tweedie", "bce", "focal", "binary_focal", "class_balanced", "logit_adjusted", "poly1", "gce", "sce", "asl",
    "kl_div", "si_sdr", "snr", "esr",
}  # fmt: skip
_WEIGHTED = {"cross_entropy", "nll", "ldam"}  # poolable only without per-class `weight`
_OVERLAP = {"dice", "jaccard", "tversky", "focal_tversky", "dice_ce"}  # poolable per sample, with smoothing


def seed_pooling(spec: LossSpec) -> str | None:
    """'mean' or 'sum' when one call over all seeds' batches equals the per-seed calls; None otherwise."""
    params = spec.params
    reduction = params.get("reduction", "mean")
    poolable = (
        spec.loss in _POOLABLE
        or (spec.loss in _WEIGHTED and params.get("weight") is None)
        or (
            spec.loss in _OVERLAP
            and not params["batch"]
            and params["empty"] == "smooth"
            and (spec.loss != "dice_ce" or params["ce_weight"] is None)
        )
    )
    if not poolable or reduction not in ("mean", "sum", "batchmean"):
        return None
    return "sum" if reduction == "sum" else "mean"
