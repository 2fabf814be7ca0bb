"""Loss families: many catalog losses of one form computed in a single vectorised call.

A trial trains dozens of members at once, each under its own loss. Most classification and regression losses
in the catalog are one formula with different coefficients, so a family evaluates K members together from
per-member parameters instead of making K calls (the calls, not the arithmetic, dominated a trial step).

* **softmax**: ``cross_entropy`` (weight, label smoothing), ``nll``, ``focal``, ``class_balanced`` (softmax),
  ``ldam``, ``logit_adjusted``, ``poly1``, ``gce``, ``sce``. With z' = s (z + b - m e_y), p = softmax(z'):

      l = w_y [a (1 - p_y)^gamma (-log p_y) + e (1 - p_y) + c (1 - p_y^q)] + h sum_k v_k (-log p_k)

  and 'mean' = sum_i l_i / (r sum_i d_{y_i}).
* **sigmoid**: ``bce`` (weight, pos_weight), ``binary_focal``, ``asl``. Per element, with p = sigmoid(x) and
  p_m = max(p - clip, 0):

      l = -[y P (1 - p)^g+ log p + (1 - y) N p_m^g- log(1 - p_m)],  'mean' over elements.
* **point**: ``mse``, ``l1``, ``huber``, ``smooth_l1``. With r = x - t: l = A r^2 if |r| < T else B |r| - O.

Only 'mean' reductions join a family; anything else keeps its own call. Families read trial data, whose
targets the trainer checks once through each member's own catalog loss, so they skip the per-call checks
(and the host synchronisation those cost) and have no ``ignore_index``.

Shape
-----
Members come first and the class (or label) dimension before the rows, the layout a stacked model's batched
matmul writes (reductions over a short class dimension run several times faster there than over a last one):

* softmax: input (S, K, C, N) logits, target (S, N) class indices -> (S, K).
* sigmoid: input (S, K, L, N) logits, target (S, L, N) 0/1 floats -> (S, K).
* point: input (S, K, N) values, target (S, N) -> (S, K).

S is the number of target sets (one per repeat) and K the members: member k of set s reads ``input[s, k]``,
which is the transpose of the (N, C) input its own catalog loss takes (``nll`` members read the logits whose
``log_softmax`` that loss would take).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advisor.losses._base import CatalogLoss, counts_to_priors, safe_divide
from advisor.losses.classification import class_balanced_weights, ldam_margins

Family = Literal["softmax", "sigmoid", "point"]

LOSS_FAMILIES: dict[str, Family] = {
    **dict.fromkeys(
        ("cross_entropy", "nll", "focal", "class_balanced", "ldam", "logit_adjusted", "poly1", "gce", "sce"),
        "softmax",
    ),
    **dict.fromkeys(("bce", "binary_focal", "asl"), "sigmoid"),
    **dict.fromkeys(("mse", "l1", "huber", "smooth_l1"), "point"),
}


def family_of(loss: nn.Module) -> Family | None:
    """The family a catalog loss computes in, or None when it keeps its own call."""
    if not isinstance(loss, CatalogLoss) or getattr(loss.params, "reduction", None) != "mean":
        return None
    if loss.loss_name == "class_balanced" and loss.params.activation != "softmax":
        return None
    return LOSS_FAMILIES.get(loss.loss_name)


def fused_loss(losses: Sequence[CatalogLoss], width: int, dtype: torch.dtype | None = None) -> nn.Module:
    """One Module computing every loss of ``losses`` (all of one family) over ``width`` classes or labels.

    Its coefficients are derived in float64 and stored in ``dtype`` (default: torch's default dtype).
    """
    families = {family_of(loss) for loss in losses}
    if len(families) != 1 or None in families:
        raise ValueError(f"losses of one family expected, got families {sorted(map(str, families))}")
    family = families.pop()
    module = {"softmax": SoftmaxFamily, "sigmoid": SigmoidFamily, "point": PointFamily}[family](losses, width)
    return module.to(dtype or torch.get_default_dtype())


def _stack(rows: list[Sequence[float]]) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _member_view(values: Tensor, dims: int) -> Tensor:
    """(K,) or (K, C) per-member values shaped to broadcast against (S, K, ...) or (S, K, C, N) tensors."""
    if values.dim() == 1:
        return values.view(1, -1, *([1] * (dims - 2)))
    return values.view(1, *values.shape, 1)


def _subset(values: Tensor, members: Tensor | None, dim: int = 1) -> Tensor:
    """The entries of ``members`` along the member dimension ``dim`` (all of them when None)."""
    return values if members is None else values.index_select(dim, members)


def _members_using(coefficients: list[float]) -> list[int]:
    """Indices of the members whose coefficient of a term is not zero."""
    return [k for k, c in enumerate(coefficients) if c]


class SoftmaxFamily(nn.Module):
    """The softmax family (see the module docstring) for K members over C classes."""

    def __init__(self, losses: Sequence[CatalogLoss], classes: int) -> None:
        super().__init__()
        terms = [_softmax_terms(loss, classes) for loss in losses]
        columns = {key: [t[key] for t in terms] for key in terms[0]}
        for key, values in columns.items():
            self.register_buffer(key, _stack(values))
        # A term every member leaves neutral is skipped; the costly ones run on the members that use them.
        self.uses = {
            "margin": any(any(m) for m in columns["margin"]),
            "shift": any(any(b) for b in columns["shift"]),
            "scale": any(s != 1 for s in columns["scale"]),
            "linear": any(columns["linear_coef"]),
            "power": any(columns["power_coef"]),
            "weight": any(w != 1 for row in columns["weight"] for w in row),
            "denominator": any(d != 1 for row in columns["denominator"] for d in row),
        }
        self.partial: dict[str, bool | None] = {}  # per term: None unused, False all members, True some
        for term, key in (("focal", "gamma"), ("smooth", "smooth_coef")):
            using = _members_using(columns[key])
            self.partial[term] = None if not using else len(using) < len(losses)
            self.register_buffer(f"{term}_members", torch.tensor(using, dtype=torch.long))

    def _members(self, term: str) -> Tensor | None:
        """The index of the members a costly term runs on; None for all of them."""
        return getattr(self, f"{term}_members") if self.partial[term] else None

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        uses, partial = self.uses, self.partial
        one_hot = None
        if uses["margin"] or partial["focal"] is not None:
            # (S, 1, C, N); F.one_hot would check the index range on the host every call
            classes = torch.arange(input.shape[2], device=target.device)
            one_hot = target[:, None, None, :] == classes[:, None]
        logits = input
        if uses["margin"]:
            logits = logits - one_hot * _member_view(self.margin, 4)
        if uses["shift"]:
            logits = logits + _member_view(self.shift, 4)
        if uses["scale"]:
            logits = logits * _member_view(self.scale, 4)
        log_p = logits.log_softmax(2)
        index = target[:, None, None, :].expand(input.shape[0], input.shape[1], 1, input.shape[3])
        log_py = log_p.gather(2, index)[:, :, 0]  # (S, K, N)
        per_entry = -log_py * _member_view(self.log_coef, 3)
        if partial["focal"] is not None:
            members = self._members("focal")
            # log(1 - p_y) as the log-sum-exp of the other classes: finite as p_y rounds to 1.
            log_1m_py = _subset(log_p, members).masked_fill(one_hot, float("-inf")).logsumexp(2)
            focused = _subset(per_entry, members) * torch.exp(
                _member_view(_subset(self.gamma, members, 0), 3) * log_1m_py
            )
            per_entry = focused if members is None else per_entry.index_copy(1, members, focused)
        if uses["linear"]:
            per_entry = per_entry + _member_view(self.linear_coef, 3) * (1.0 - log_py.exp())
        if uses["power"]:
            powered = torch.exp(_member_view(self.q, 3) * log_py)
            per_entry = per_entry + _member_view(self.power_coef, 3) * (1.0 - powered)
        if uses["weight"]:
            per_entry = per_entry * self.weight[:, target].transpose(0, 1)
        if partial["smooth"] is not None:
            members = self._members("smooth")
            weights = _subset(self.smooth_weight, members, 0)
            spread = -(_subset(log_p, members) * _member_view(weights, 4)).sum(2)
            spread = _member_view(_subset(self.smooth_coef, members, 0), 3) * spread
            per_entry = per_entry + spread if members is None else per_entry.index_add(1, members, spread)
        if uses["denominator"]:
            denominator = self.denominator[:, target].transpose(0, 1).sum(-1) * self.mean_scale
        else:  # the count of targets
            denominator = (_member_view(self.mean_scale, 2) * target.shape[-1]).expand(per_entry.shape[:2])
        return safe_divide(per_entry.sum(-1), denominator)  # 0 when every target weighs 0, as the catalog


def _softmax_terms(loss: CatalogLoss, classes: int) -> dict[str, list[float] | float]:
    """One member's coefficients in the softmax family's formula."""
    name, p = loss.loss_name, loss.params
    like = torch.empty(0, dtype=torch.float64)
    ones, zeros = [1.0] * classes, [0.0] * classes
    terms: dict[str, list[float] | float] = {
        "weight": ones, "denominator": ones, "smooth_weight": zeros, "shift": zeros, "margin": zeros,
        "scale": 1.0, "log_coef": 1.0, "gamma": 0.0, "linear_coef": 0.0, "power_coef": 0.0, "q": 0.0,
        "smooth_coef": 0.0, "mean_scale": 1.0,
    }  # fmt: skip
    if name in ("cross_entropy", "nll", "ldam") and p.weight is not None:
        terms["weight"] = terms["denominator"] = list(p.weight)
    if name == "cross_entropy" and p.label_smoothing > 0:
        terms["log_coef"] = 1.0 - p.label_smoothing
        terms["smooth_coef"] = p.label_smoothing / classes
        terms["smooth_weight"] = terms["weight"]
    elif name == "focal":
        terms["gamma"] = p.gamma
        terms["weight"] = ones if p.alpha is None else list(p.alpha)
        terms["mean_scale"] = float(classes) if p.mean_over == "elements" else 1.0
    elif name == "class_balanced":
        terms["gamma"] = p.gamma
        terms["weight"] = class_balanced_weights(p.samples_per_class, p.beta, like).tolist()
    elif name == "ldam":
        terms["margin"] = ldam_margins(p.samples_per_class, p.max_margin, like).tolist()
        terms["scale"] = p.scale
    elif name == "logit_adjusted":
        terms["shift"] = (p.tau * torch.log(counts_to_priors(p.samples_per_class, like))).tolist()
    elif name == "poly1":
        terms["linear_coef"] = p.epsilon
    elif name == "gce":
        terms.update(log_coef=0.0, power_coef=1.0 / p.q, q=p.q)
    elif name == "sce":
        terms.update(log_coef=p.alpha, linear_coef=-p.log_zero * p.beta)
    return terms


class SigmoidFamily(nn.Module):
    """The sigmoid family (see the module docstring) for K members over L labels."""

    def __init__(self, losses: Sequence[CatalogLoss], labels: int) -> None:
        super().__init__()
        terms = [_sigmoid_terms(loss, labels) for loss in losses]
        columns = {key: [t[key] for t in terms] for key in terms[0]}
        for key, values in columns.items():
            self.register_buffer(key, _stack(values))
        self.register_buffer(
            "log_clip", _stack([math.log(c) if c > 0 else -math.inf for c in columns["clip"]])
        )
        self.uses = {key: any(columns[key]) for key in ("gamma_pos", "gamma_neg", "clip")}

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        uses = self.uses
        y = target[:, None]
        log_p, log_1m_p = F.logsigmoid(input), F.logsigmoid(-input)
        positive = log_p * _member_view(self.positive, 4)
        if uses["gamma_pos"]:
            positive = positive * torch.exp(_member_view(self.gamma_pos, 4) * log_1m_p)
        if uses["clip"]:  # log(1 - p_m) = log(min(1 - p + clip, 1)); clip 0 gives log(1 - p) exactly
            log_negative = torch.logaddexp(log_1m_p, _member_view(self.log_clip, 4)).clamp_max(0.0)
            shifted = (torch.sigmoid(input) - _member_view(self.clip, 4)).clamp_min(
                torch.finfo(input.dtype).tiny
            )
            negative_weight = shifted ** _member_view(self.gamma_neg, 4)
        else:
            log_negative = log_1m_p
            negative_weight = torch.exp(_member_view(self.gamma_neg, 4) * log_p) if uses["gamma_neg"] else 1.0
        negative = negative_weight * log_negative * _member_view(self.negative, 4)
        per_entry = -(y * positive + (1.0 - y) * negative)
        return per_entry.flatten(2).mean(-1)


def _sigmoid_terms(loss: CatalogLoss, labels: int) -> dict[str, list[float] | float]:
    """One member's coefficients in the sigmoid family's formula."""
    name, p = loss.loss_name, loss.params
    terms: dict[str, list[float] | float] = {
        "positive": [1.0] * labels, "negative": [1.0] * labels, "gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0,
    }  # fmt: skip
    if name == "bce":
        weight = [1.0] * labels if p.weight is None else list(p.weight)
        pos_weight = [1.0] * labels if p.pos_weight is None else list(p.pos_weight)
        terms.update(positive=[w * q for w, q in zip(weight, pos_weight, strict=True)], negative=weight)
    elif name == "binary_focal":
        terms.update(gamma_pos=p.gamma, gamma_neg=p.gamma)
        if p.alpha is not None:
            terms.update(positive=[p.alpha] * labels, negative=[1.0 - p.alpha] * labels)
    elif name == "asl":
        terms.update(gamma_pos=p.gamma_pos, gamma_neg=p.gamma_neg, clip=p.clip)
    return terms


class PointFamily(nn.Module):
    """The point-regression family (see the module docstring) for K members."""

    def __init__(self, losses: Sequence[CatalogLoss], width: int = 1) -> None:
        super().__init__()
        rows = [_point_terms(loss) for loss in losses]
        for column, key in enumerate(("threshold", "quadratic", "linear", "offset")):
            self.register_buffer(key, _stack([row[column] for row in rows]))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        residual = input - target[:, None]
        size = residual.abs()
        quadratic = _member_view(self.quadratic, 3) * residual.square()
        linear = _member_view(self.linear, 3) * size - _member_view(self.offset, 3)
        return torch.where(size < _member_view(self.threshold, 3), quadratic, linear).mean(-1)


def _point_terms(loss: CatalogLoss) -> tuple[float, float, float, float]:
    """(threshold T, quadratic A, linear B, offset O) of one member."""
    name, p = loss.loss_name, loss.params
    if name == "mse":
        return math.inf, 1.0, 0.0, 0.0
    if name == "huber":
        return p.delta, 0.5, p.delta, 0.5 * p.delta**2
    if name == "smooth_l1" and p.beta > 0:
        return p.beta, 0.5 / p.beta, 1.0, 0.5 * p.beta
    return 0.0, 0.0, 1.0, 0.0  # l1, and smooth_l1 with beta 0
