"""``compound``: a weighted sum of catalog losses on one output (Dice + focal, Dice + CE, L1 + MSE, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from torch import Tensor, nn

from advisor.errors import FieldViolation, SpecError
from advisor.losses._base import CatalogLoss, LossParams, TensorFormat
from advisor.losses.registry import (
    HEAD_TYPES,
    LossInfo,
    build_loss,
    catalog,
    get_loss_info,
    normalize_nested_spec,
    register_loss,
)

MIN_TERMS, MAX_TERMS = 2, 8
# Losses that are themselves compositions: a compound lists its terms flat instead, and a multi_task
# spreads over several outputs.
_COMPOSITE = ("compound", "multi_task")


class CompoundTerm(LossParams):
    loss: str = Field(description="A registered loss name (not 'compound' or 'multi_task').")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Its parameters, validated against its schema; its reduction must not be 'none'.",
    )
    weight: float = Field(1.0, gt=0, description="Multiplier w_k of the term (finite, > 0).")


class _Shared:
    """What the terms seen so far have in common: head types and tensor format."""

    def __init__(self, info: LossInfo, tensor_format: TensorFormat) -> None:
        self.losses = [info.name]
        self.heads = [h for h in HEAD_TYPES if h in info.heads]
        self.format = tensor_format

    def common_format(self, info: LossInfo, tensor_format: TensorFormat | None) -> TensorFormat | None:
        """The format shared with loss ``info`` configured to read ``tensor_format``; None if it does not fit."""
        if tensor_format is None or not set(self.heads) & set(info.heads):
            return None
        return self.format.shared_with(tensor_format)

    def add(self, info: LossInfo, common: TensorFormat) -> None:
        self.losses.append(info.name)
        self.heads = [h for h in self.heads if h in info.heads]
        self.format = common

    def describe(self) -> str:
        return f"heads {self.heads}, {self.format}"

    def fitting_losses(self) -> list[str]:
        """Registered losses that fit with their default parameters (others may fit with other ones)."""
        return [
            info.name
            for info in catalog()
            if info.name not in _COMPOSITE and self.common_format(info, info.module.tensor_format) is not None
        ]


def _misfit(index: int, info: LossInfo, tensor_format: TensorFormat, shared: _Shared) -> FieldViolation:
    """Why term ``index`` does not fit the terms before it, at the field to change."""
    before = (
        f"terms 0-{index - 1} ({', '.join(shared.losses)})" if index > 1 else f"term 0 ({shared.losses[0]})"
    )
    allowed = f"losses that fit: {', '.join(shared.fitting_losses()) or 'none'}"
    if not set(shared.heads) & set(info.heads):
        problem = f"serves heads {list(info.heads)}, none of {before}'s heads {shared.heads}"
        return FieldViolation(f"{index}.loss", f"{info.name!r} {problem}; {allowed}")
    # Same heads, different reading of the output: a parameter (an activation) may be what differs.
    field = "loss" if info.module.tensor_format == tensor_format else "params"
    return FieldViolation(
        f"{index}.{field}",
        f"{info.name!r} with these parameters reads {tensor_format}, which does not fit {before}: "
        f"{shared.describe()}; {allowed}",
    )


def _ignore_index_conflict(terms: list[CompoundTerm]) -> FieldViolation | None:
    """Terms that skip different target values would each read the others' ignored entries as classes."""
    first: tuple[int, Any] | None = None
    for index, term in enumerate(terms):
        value = term.params.get("ignore_index")
        if value is None:
            continue
        if first is None:
            first = (index, value)
        elif value != first[1]:
            return FieldViolation(
                f"{index}.params.ignore_index",
                f"{value} differs from term {first[0]}'s ignore_index {first[1]}; allowed: {first[1]} (every "
                "term reads the same target, so they must skip the same entries)",
            )
    return None


class CompoundParams(LossParams):
    terms: list[CompoundTerm] = Field(
        min_length=MIN_TERMS,
        max_length=MAX_TERMS,
        description=f"{MIN_TERMS} to {MAX_TERMS} weighted catalog losses that share a head type and read the "
        "same input and target formats.",
    )

    @field_validator("terms")
    @classmethod
    def _terms_fit_one_output(cls, terms: list[CompoundTerm]) -> list[CompoundTerm]:
        normalized: list[CompoundTerm] = []
        shared: _Shared | None = None
        for index, term in enumerate(terms):
            spec = normalize_nested_spec(
                {"loss": term.loss, "params": term.params},
                field=str(index),
                owner="compound (list its terms here instead)",
                refuse=_COMPOSITE,
            )
            info = get_loss_info(spec.loss)
            tensor_format = info.module.format_for(info.params_model.model_validate(spec.params))
            if tensor_format is None:
                raise SpecError(
                    FieldViolation(
                        f"{index}.loss",
                        f"{info.name!r} declares no tensor format (CatalogLoss.tensor_format), so it cannot "
                        "share an output with another loss",
                    )
                )
            if shared is None:
                shared = _Shared(info, tensor_format)
            elif (common := shared.common_format(info, tensor_format)) is not None:
                shared.add(info, common)
            else:
                raise SpecError(_misfit(index, info, tensor_format, shared))
            normalized.append(CompoundTerm(loss=spec.loss, params=spec.params, weight=term.weight))
        conflict = _ignore_index_conflict(normalized)
        if conflict is not None:
            raise SpecError(conflict)
        return normalized


@register_loss(
    "compound",
    heads=HEAD_TYPES,
    input="the input its terms share (they must read one format)",
    target="the target its terms share",
    reference="Ma et al. (2021), Loss odyssey in medical image segmentation, Medical Image Analysis; Zhu et al. "
    "(2019), AnatomyNet (Dice + focal), Medical Physics; MONAI DiceFocalLoss",
    _builtin=True,
)
class CompoundLoss(CatalogLoss):
    """Weighted sum of catalog losses on one output: sum_k w_k L_k(input, target).

    Each term is a catalog loss with its own parameters and reduction (never 'none'), called on the same
    input and target. The spec is checked when it is validated: 2 to 8 terms, weights finite and > 0, every
    term a registered loss that is not itself ``compound`` or ``multi_task``, all serving a common head type
    (the ``heads`` property) and reading the output the same way (softmax or sigmoid logits, values, ...) with
    a target layout they all accept (``CatalogLoss.tensor_format``), and the same ``ignore_index`` wherever
    one is set. Errors name the term: ``params.terms.1.loss``.

    Example, Dice + focal (AnatomyNet; MONAI's DiceFocalLoss) on a segmentation head:
    ``{"terms": [{"loss": "dice", "params": {"include_background": false}}, {"loss": "focal"}]}``.
    ``dice_ce`` remains the one-loss form of Dice + CE, with nnU-Net's conventions built in.
    """

    Params = CompoundParams

    def __init__(self, params: CompoundParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.terms = nn.ModuleList(
            build_loss({"loss": t.loss, "params": t.params}) for t in self.params.terms
        )
        self.weights = [t.weight for t in self.params.terms]

    @property
    def heads(self) -> tuple[str, ...]:
        """The head types every term serves."""
        infos = [get_loss_info(t.loss) for t in self.params.terms]
        return tuple(h for h in HEAD_TYPES if all(h in info.heads for info in infos))

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        total = self.weights[0] * self.terms[0](input, target)
        for weight, term in zip(self.weights[1:], self.terms[1:], strict=True):
            total = total + weight * term(input, target)
        return total
