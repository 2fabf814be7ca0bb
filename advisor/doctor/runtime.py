"""The runtime checks: look at a loss's actual input and target tensors and report misuse with the numbers.

Each check is a small function registered under the id of the finding it reports (declared, with its text
and examples, in :mod:`advisor.doctor.findings`). A check sees a :class:`LossView`, what the doctor knows
about the loss: the input and target formats it reads (the catalog's :class:`~advisor.losses.TensorFormat`,
shared by the torch built-ins that compute the same loss) and the parameters that matter (reduction,
ignore_index, label smoothing, per-class weights or counts).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advisor.doctor.findings import FINDINGS, SEVERITIES, Finding
from advisor.losses import CatalogLoss, TensorFormat, build_loss, get_loss_info

# Thresholds; each finding's text states the one it uses.
SUM_TOLERANCE = (
    0.01  # a row of probabilities sums to 1 within this; log-probabilities' logsumexp is 0 within it
)
MIN_VALUES = 16  # value-range findings need at least this many input values
TWICE_RANGE = (0.5, 0.7311)  # sigmoid(sigmoid(x)) lies in (0.5, sigmoid(1) = 0.7311)
MIN_COUNTED = 32  # class-order findings need at least this many valid class-index targets
COUNT_RATIO = 2.0  # ... and the batch counts must differ by this factor
STD_RANGE = (0.1, 10.0)  # a variance head's target std outside this range is unscaled


class LossDoctorWarning(UserWarning):
    """A finding reported by :func:`watch` (once per finding id and head)."""


@dataclass(frozen=True)
class LossView:
    """What the checks know about a loss: its name, formats and the parameters they read."""

    label: str
    format: TensorFormat | None
    reduction: str | None = None
    ignore_index: int | None = None
    label_smoothing: float = 0.0
    class_weights: tuple[float, ...] | None = None
    weights_name: str = "weight"
    class_counts: tuple[float, ...] | None = None

    @property
    def input(self) -> str | None:
        return self.format.input if self.format else None

    @property
    def targets(self) -> frozenset[str]:
        return self.format.targets if self.format else frozenset()


# ------------------------------------------------------------------------------------------ resolving losses


def _catalog_format(name: str, *extra_targets: str) -> TensorFormat:
    declared = get_loss_info(name).module.tensor_format
    assert declared is not None, name
    return TensorFormat(declared.input, declared.targets | set(extra_targets))


@functools.cache
def _torch_formats() -> dict[type[nn.Module], TensorFormat]:
    """torch built-ins by the catalog loss they compute (torch's CrossEntropyLoss also takes probabilities
    shaped like the input); BCELoss, which reads probabilities, has no catalog twin."""
    return {
        nn.CrossEntropyLoss: _catalog_format("cross_entropy", "like_input"),
        nn.NLLLoss: _catalog_format("nll"),
        nn.BCEWithLogitsLoss: _catalog_format("bce"),
        nn.BCELoss: TensorFormat.of("probabilities", "like_input"),
        nn.MSELoss: _catalog_format("mse"),
    }


_FUNCTIONAL: dict[Callable[..., Tensor], type[nn.Module]] = {
    F.cross_entropy: nn.CrossEntropyLoss,
    F.nll_loss: nn.NLLLoss,
    F.binary_cross_entropy: nn.BCELoss,
    F.binary_cross_entropy_with_logits: nn.BCEWithLogitsLoss,
    F.mse_loss: nn.MSELoss,
}
_PER_CLASS_WEIGHT = (nn.CrossEntropyLoss, nn.NLLLoss)  # BCE's weight rescales elements, not classes


def _floats(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, Tensor):
        return tuple(float(v) for v in value.detach().reshape(-1).tolist())
    if isinstance(value, list | tuple):
        return tuple(float(v) for v in value)
    return None  # a scalar (binary focal's alpha) is not per class


def build(loss: Any) -> Any:
    """The loss module or callable behind ``loss``: a recommendation's choice or candidate and a spec are
    built with :func:`advisor.build_loss`; modules and callables are returned as they are."""
    from advisor.recommendation import LossChoice, RankedCandidate
    from advisor.spec import LossSpec

    if isinstance(loss, LossChoice | RankedCandidate):
        loss = loss.spec
    if isinstance(loss, LossSpec | Mapping | str):
        return build_loss(loss)
    return loss


def views(loss: Any) -> list[tuple[str | None, LossView]]:
    """(head, view) for every loss the doctor checks inside ``loss``: one, a compound's terms, or a
    multi_task loss's heads (head names the tensors to check in the output and target mappings)."""
    from advisor.doctor.wrapper import WatchedLoss

    loss = build(loss)
    if isinstance(loss, WatchedLoss):
        loss = loss.loss
    if isinstance(loss, CatalogLoss):
        if loss.loss_name == "multi_task":
            return [(name, view) for name in loss.head_names for _, view in views(loss.heads[name])]
        if loss.loss_name == "compound":
            return [found for term in loss.terms for found in views(term)]
        return [(None, _catalog_view(loss))]
    keywords: dict[str, Any] = {}
    if isinstance(loss, functools.partial):
        loss, keywords = loss.func, dict(loss.keywords)
    torch_type = _functional_type(loss)
    if torch_type is not None:
        defaults = {"reduction": "mean", "ignore_index": -100, "label_smoothing": 0.0, "weight": None}
        settings = {**defaults, **keywords}
        weight = settings["weight"] if torch_type in _PER_CLASS_WEIGHT else None
        return [
            (
                None,
                LossView(
                    f"F.{loss.__name__}",
                    _torch_formats()[torch_type],
                    reduction=settings["reduction"],
                    ignore_index=settings["ignore_index"] if torch_type in _PER_CLASS_WEIGHT else None,
                    label_smoothing=float(settings["label_smoothing"])
                    if torch_type is nn.CrossEntropyLoss
                    else 0,
                    class_weights=_floats(weight),
                ),
            )
        ]
    if isinstance(loss, nn.modules.loss._Loss):
        return [(None, _torch_view(loss))]
    raise TypeError(
        "advisor.doctor checks catalog losses, specs (LossSpec, dict, JSON), LossChoice and RankedCandidate, "
        "torch.nn losses and the functional forms F.cross_entropy, F.nll_loss, F.binary_cross_entropy, "
        f"F.binary_cross_entropy_with_logits and F.mse_loss; got {type(loss).__name__}"
    )


def _functional_type(loss: Any) -> type[nn.Module] | None:
    try:
        return _FUNCTIONAL.get(loss)
    except TypeError:  # an unhashable callable
        return None


def _catalog_view(loss: CatalogLoss) -> LossView:
    p = loss.params
    alpha = _floats(getattr(p, "alpha", None))
    weight = _floats(getattr(p, "weight", None))
    return LossView(
        f"catalog '{loss.loss_name}'",
        type(loss).format_for(p),
        reduction=getattr(p, "reduction", None),
        ignore_index=getattr(p, "ignore_index", None),
        label_smoothing=float(getattr(p, "label_smoothing", 0.0)),
        class_weights=weight if weight is not None else alpha,
        weights_name="weight" if weight is not None else "alpha",
        class_counts=_floats(getattr(p, "samples_per_class", None)),
    )


def _torch_view(loss: nn.Module) -> LossView:
    per_class = isinstance(loss, _PER_CLASS_WEIGHT)
    return LossView(
        f"nn.{type(loss).__name__}",
        next((f for t, f in _torch_formats().items() if isinstance(loss, t)), None),
        reduction=getattr(loss, "reduction", None),
        ignore_index=getattr(loss, "ignore_index", None) if per_class else None,
        label_smoothing=float(getattr(loss, "label_smoothing", 0.0)),
        class_weights=_floats(getattr(loss, "weight", None)) if per_class else None,
    )


# ------------------------------------------------------------------------------------------------ the checks

Check = Callable[[LossView, Tensor, Tensor], str | None]
CHECKS: dict[str, Check] = {}


def _check(finding_id: str) -> Callable[[Check], Check]:
    if finding_id not in FINDINGS:
        raise KeyError(f"no finding {finding_id!r} is declared in advisor/doctor/findings.py")

    def register(function: Check) -> Check:
        CHECKS[finding_id] = function
        return function

    return register


def _host(*values: Tensor) -> list[float]:
    """Scalars to Python floats in one device-to-host copy."""
    return torch.stack([v.detach().to(torch.float64).reshape(()) for v in values]).cpu().tolist()


def _rows(x: Tensor) -> Tensor:
    """(N, C, *) as (M, C): one row per position, the class dim last."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def _n(value: float) -> str:
    """3 significant digits, more where rounding would land on a boundary (0.9996 must not read as 1)."""
    text = f"{value:.3g}"
    return f"{value:.6g}" if float(text) == round(value) != value else text


def _index_shape(outputs: Tensor) -> tuple[int, ...] | None:
    return (outputs.shape[0], *outputs.shape[2:]) if outputs.dim() >= 2 else None


def _has_classes(outputs: Tensor) -> bool:
    return outputs.is_floating_point() and outputs.dim() >= 2 and outputs.shape[1] >= 2


@_check("softmax-into-cross-entropy")
def _softmax_into_cross_entropy(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.input != "softmax_logits" or not _has_classes(outputs):
        return None
    x = outputs.detach().float()
    lo, hi, deviation = _host(x.min(), x.max(), (_rows(x).sum(1) - 1).abs().max())
    if lo < 0 or hi > 1 or deviation > SUM_TOLERANCE:
        return None
    return (
        f"rows of the input (dim 1, {outputs.shape[1]} classes) sum to 1.000 +/- {deviation:.3f} and lie in "
        f"[{_n(lo)}, {_n(hi)}]: these look like probabilities, but {view.label} applies log_softmax itself "
        f"(flagged when every row sums to 1 within {SUM_TOLERANCE} and every value lies in [0, 1])."
    )


@_check("nll-without-log-softmax")
def _nll_without_log_softmax(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.input != "log_probs" or not _has_classes(outputs):
        return None
    x = outputs.detach().float()
    rows = _rows(x)
    lse = rows.logsumexp(1)
    lo, hi, lse_lo, lse_hi, deviation = _host(
        x.min(), x.max(), lse.min(), lse.max(), (rows.sum(1) - 1).abs().max()
    )
    if hi <= SUM_TOLERANCE and max(abs(lse_lo), abs(lse_hi)) <= SUM_TOLERANCE:
        return None
    rule = f"(log-probabilities are <= 0 with a logsumexp of 0 over dim 1, within {SUM_TOLERANCE})"
    if lo >= 0 and hi <= 1 and deviation <= SUM_TOLERANCE:
        return (
            f"rows of the input sum to 1.000 +/- {deviation:.3f} and lie in [{_n(lo)}, {_n(hi)}]: these are "
            f"probabilities, but {view.label} reads log-probabilities {rule}."
        )
    return (
        f"the input lies in [{_n(lo)}, {_n(hi)}] and its rows' logsumexp in [{_n(lse_lo)}, {_n(lse_hi)}]: "
        f"these look like raw logits, but {view.label} reads log-probabilities {rule}."
    )


@_check("logits-into-bce")
def _logits_into_bce(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.input != "probabilities" or not outputs.is_floating_point():
        return None
    lo, hi = _host(outputs.detach().min(), outputs.detach().max())
    if lo >= 0 and hi <= 1:
        return None
    kind = "log-probabilities" if hi <= 0 else "logits"
    return (
        f"input values lie in [{_n(lo)}, {_n(hi)}], outside [0, 1]: these look like {kind}, but {view.label} "
        "reads probabilities (flagged when any value lies outside [0, 1])."
    )


def _in_twice_range(lo: float, hi: float) -> bool:
    return TWICE_RANGE[0] <= lo < hi <= TWICE_RANGE[1]


@_check("probabilities-into-bce-with-logits")
def _probabilities_into_bce_with_logits(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.input != "sigmoid_logits" or not outputs.is_floating_point() or outputs.numel() < MIN_VALUES:
        return None
    lo, hi = _host(outputs.detach().min(), outputs.detach().max())
    if not 0 <= lo < hi <= 1 or _in_twice_range(lo, hi):  # twice-range values: sigmoid-applied-twice
        return None
    return (
        f"all {outputs.numel()} input values lie in [{_n(lo)}, {_n(hi)}], inside [0, 1]: these look like "
        f"probabilities, but {view.label} applies a sigmoid itself (flagged when {MIN_VALUES} or more values, "
        "not all equal, lie in [0, 1])."
    )


@_check("sigmoid-applied-twice")
def _sigmoid_applied_twice(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.input not in ("sigmoid_logits", "probabilities") or not outputs.is_floating_point():
        return None
    if outputs.numel() < MIN_VALUES:
        return None
    lo, hi = _host(outputs.detach().min(), outputs.detach().max())
    if not _in_twice_range(lo, hi):
        return None
    cause = (
        "a sigmoid was applied twice"
        if view.input == "probabilities"
        else f"a sigmoid was applied before {view.label}, which applies another"
    )
    return (
        f"all {outputs.numel()} input values lie in [{lo:.3f}, {hi:.3f}], the range of sigmoid(sigmoid(x)) "
        f"(0.5, 0.731]: {cause} (flagged when {MIN_VALUES} or more values, not all equal, lie in "
        f"[{TWICE_RANGE[0]}, {TWICE_RANGE[1]}])."
    )


@_check("targets-not-class-indices")
def _targets_not_class_indices(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if "class_indices" not in view.targets or outputs.dim() < 2 or targets.numel() == 0:
        return None
    expected = _index_shape(outputs)
    wanted = f"{view.label} reads int64 class indices of shape {expected}"
    if targets.shape == outputs.shape and "like_input" not in view.targets:
        t = targets.detach().float()
        rows = _rows(t)
        binary, row_sum_one, lo, hi = _host(
            ((t == 0) | (t == 1)).all(), (rows.sum(1) == 1).all(), t.min(), t.max()
        )
        if binary and row_sum_one:
            return f"targets have the input's shape {tuple(targets.shape)} and are one-hot along dim 1: {wanted}."
        return (
            f"targets have the input's shape {tuple(targets.shape)} with values in [{_n(lo)}, {_n(hi)}]: "
            f"{wanted}."
        )
    if targets.is_floating_point() and tuple(targets.shape) == expected:
        t = targets.detach()
        whole, lo, hi = _host((t == t.round()).all(), t.min(), t.max())
        what = "whole numbers: class indices stored as floats" if whole else "fractions: not class indices"
        return f"targets are {str(targets.dtype).removeprefix('torch.')} in [{_n(lo)}, {_n(hi)}], {what}; {wanted}."
    return None


def _valid_indices(view: LossView, outputs: Tensor, targets: Tensor) -> Tensor | None:
    """The target's valid entries (ignore_index dropped) when it holds integer class indices, else None."""
    if "class_indices" not in view.targets or outputs.dim() < 2:
        return None
    if (
        targets.is_floating_point()
        or targets.dtype == torch.bool
        or tuple(targets.shape) != _index_shape(outputs)
    ):
        return None
    flat = targets.detach().reshape(-1)
    return flat[flat != view.ignore_index] if view.ignore_index is not None else flat


def _num_classes(view: LossView, outputs: Tensor) -> int:
    # one sigmoid channel against 0/1 indices (the Lovasz hinge) has two classes
    return 2 if view.input == "sigmoid_logits" and outputs.shape[1] == 1 else outputs.shape[1]


@_check("class-index-out-of-range")
def _class_index_out_of_range(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    valid = _valid_indices(view, outputs, targets)
    if valid is None or valid.numel() == 0:
        return None
    classes = _num_classes(view, outputs)
    outside = (valid < 0) | (valid >= classes)
    lo, hi, bad = (int(v) for v in _host(valid.min(), valid.max(), outside.sum()))
    if bad == 0:
        return None
    ignore = f" besides ignore_index={view.ignore_index}" if view.ignore_index is not None else ""
    hint = f"; they look 1-based (1..{classes})" if lo >= 1 and hi == classes else ""
    return (
        f"targets hold class indices in [{lo}, {hi}] ({bad} of {valid.numel()} outside), but the input has "
        f"{outputs.shape[1]} channels in dim 1: {view.label} accepts 0..{classes - 1}{ignore}{hint}."
    )


@_check("label-smoothing-twice")
def _label_smoothing_twice(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.label_smoothing <= 0 or not targets.is_floating_point() or targets.shape != outputs.shape:
        return None
    if outputs.dim() < 2 or outputs.shape[1] < 2:
        return None
    t = targets.detach().float()
    lo, hi, deviation = _host(t.min(), t.max(), (_rows(t).sum(1) - 1).abs().max())
    if lo <= 0 or hi > 1 or deviation > SUM_TOLERANCE:
        return None
    before = lo * outputs.shape[1]
    after = before + view.label_smoothing - before * view.label_smoothing
    return (
        f"targets are soft already: every entry is > 0 (smallest {_n(lo)}, largest {_n(hi)}) and rows sum "
        f"to 1 within {deviation:.3f}, as smoothing with e ~ {_n(before)} (C x the smallest entry) leaves "
        f"them; label_smoothing={_n(view.label_smoothing)} smooths again, to e ~ {_n(after)} in effect "
        f"(flagged when every target entry is > 0 and rows sum to 1 within {SUM_TOLERANCE})."
    )


@_check("class-weight-order")
def _class_weight_order(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    declared = view.class_weights if view.class_weights is not None else view.class_counts
    valid = _valid_indices(view, outputs, targets)
    if declared is None or valid is None or len(declared) != outputs.shape[1] or len(set(declared)) < 2:
        return None
    classes = outputs.shape[1]
    valid = valid[(valid >= 0) & (valid < classes)]
    counts = [int(c) for c in torch.bincount(valid, minlength=classes).cpu().tolist()]
    total = sum(counts)
    if total < MIN_COUNTED:
        return None
    rule = (
        f"(flagged when, over {MIN_COUNTED} or more targets, the class the list favours is the batch's most "
        f"frequent with at least {COUNT_RATIO:g}x the count of the one it favours least)"
    )
    big, small = declared.index(max(declared)), declared.index(min(declared))
    if view.class_weights is not None:  # favoured: the most weighted class
        favoured, other = big, small
        claim = (
            f"{view.weights_name}[{big}] = {_n(declared[big])} is the largest weight and "
            f"{view.weights_name}[{small}] = {_n(declared[small])} the smallest"
        )
        expectation = "inverse-frequency weights would be the other way round"
    else:  # samples_per_class: favoured (treated as rare) is the class with the smallest count
        favoured, other = small, big
        claim = (
            f"samples_per_class gives class {small} the smallest count ({_n(declared[small])}) and class "
            f"{big} the largest ({_n(declared[big])})"
        )
        expectation = "the counts look listed in another class order"
    if counts[favoured] != max(counts) or counts[favoured] < COUNT_RATIO * max(counts[other], 1):
        return None
    return (
        f"{claim}, but in this batch class {favoured} is the most frequent ({counts[favoured]} of {total} "
        f"targets) and class {other} has {counts[other]}: {expectation} {rule}."
    )


@_check("variance-head-unscaled-target")
def _variance_head_unscaled_target(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.input != "mean_log_var" or not targets.is_floating_point() or targets.numel() < 2:
        return None
    std, mean = torch.std_mean(targets.detach().double().reshape(-1))
    std_value, mean_value = _host(std, mean)
    if not math.isfinite(std_value) or STD_RANGE[0] <= std_value <= STD_RANGE[1]:
        return None
    return (
        f"the target's std is {_n(std_value)} (mean {_n(mean_value)}) over {targets.numel()} values, while a "
        f"log-variance head starts near variance 1 (flagged when the std is below {STD_RANGE[0]} or above "
        f"{STD_RANGE[1]})."
    )


@_check("reduction-sum")
def _reduction_sum(view: LossView, outputs: Tensor, targets: Tensor) -> str | None:
    if view.reduction != "sum":
        return None
    count = targets.numel()
    return (
        f"{view.label} has reduction='sum'; this call sums {count} target elements, so the loss and its "
        f"gradients are about {count}x those of reduction='mean'."
    )


# ------------------------------------------------------------------------------------------------ the entry


def check_views(found_views: list[tuple[str | None, LossView]], outputs: Any, targets: Any) -> list[Finding]:
    """Run every check on each (head, view): the tensors are ``outputs[head]`` for a head, else as given."""
    findings: dict[tuple[str, str | None], Finding] = {}
    for head, view in found_views:
        x = outputs[head] if head is not None else outputs
        y = targets[head] if head is not None else targets
        tensors = isinstance(x, Tensor) and isinstance(y, Tensor) and x.numel() > 0 and y.numel() > 0
        for finding_id, run in CHECKS.items():
            if (finding_id, head) in findings:
                continue
            if not tensors and finding_id != "reduction-sum":
                continue
            seen = run(view, x, y) if tensors else _reduction_only(view)
            if seen is not None:
                findings[finding_id, head] = FINDINGS[finding_id].finding(seen, loss=view.label, head=head)
    return sorted(findings.values(), key=lambda f: SEVERITIES.index(f.severity))


def _reduction_only(view: LossView) -> str | None:
    return f"{view.label} has reduction='sum'." if view.reduction == "sum" else None


def check(loss: Any, outputs: Any, targets: Any) -> list[Finding]:
    """Check one call of ``loss`` on ``outputs`` and ``targets``; the findings, errors first.

    Parameters
    ----------
    loss
        A catalog loss; a spec (``LossSpec``, dict or JSON) or a recommendation's ``LossChoice`` /
        ``RankedCandidate``, built with :func:`advisor.build_loss`; a ``torch.nn`` loss (CrossEntropyLoss,
        NLLLoss, BCELoss, BCEWithLogitsLoss, MSELoss; other ``_Loss`` classes get the reduction check only); or
        one of F.cross_entropy, F.nll_loss, F.binary_cross_entropy, F.binary_cross_entropy_with_logits,
        F.mse_loss (a ``functools.partial`` of one carries its keywords).
    outputs, targets
        What the loss is called with (mappings by head for a ``multi_task`` loss). Nothing is modified; the
        checks read a few statistics back from the device.

    Examples
    --------
    >>> import torch
    >>> [f.id for f in check(torch.nn.CrossEntropyLoss(), torch.rand(4, 3).softmax(1), torch.tensor([0, 1, 2, 0]))]
    ['softmax-into-cross-entropy']
    """
    return check_views(views(loss), outputs, targets)
