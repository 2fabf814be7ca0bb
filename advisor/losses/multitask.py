"""``multi_task``: one loss over several named output heads, each with its own catalog loss."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from advisor.errors import FieldViolation, LossInputError
from advisor.losses._base import CatalogLoss, LossParams, safe_divide
from advisor.losses.registry import HEAD_TYPES, build_loss, normalize_nested_spec, register_loss


class StaticWeighting(LossParams):
    scheme: Literal["static"] = "static"
    weights: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None, description="Weight of each head by name; null weights every head 1."
    )


class UncertaintyWeighting(LossParams):
    scheme: Literal["uncertainty"]
    init_log_var: float = Field(0.0, description="Initial learned log-variance s_i of every head.")


class DWAWeighting(LossParams):
    scheme: Literal["dwa"]
    temperature: float = Field(2.0, gt=0, description="Softmax temperature T over the loss-descent rates.")


Weighting = Annotated[StaticWeighting | UncertaintyWeighting | DWAWeighting, Field(discriminator="scheme")]


class MultiTaskParams(LossParams):
    heads: dict[str, dict[str, Any]] = Field(
        min_length=1, description="A loss spec per head name; each must reduce to a scalar (not 'none')."
    )
    weighting: Weighting = Field(default_factory=StaticWeighting, description="How head losses are combined.")

    @field_validator("heads")
    @classmethod
    def _heads_are_scalar_catalog_losses(cls, heads: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        normalized = {}
        for name, spec in heads.items():
            if not name.isidentifier():
                raise ValueError(f"head name {name!r} must be an identifier (letters, digits, underscores)")
            # A head may be a compound loss (Dice + focal on a segmentation head), not another multi_task.
            head = normalize_nested_spec(spec, field=name, owner="multi_task", refuse=("multi_task",))
            normalized[name] = head.model_dump(mode="json")
        return normalized

    @field_validator("weighting")
    @classmethod
    def _weights_name_heads(cls, weighting: Any, info: Any) -> Any:
        heads = info.data.get("heads")
        static_weights = weighting.weights if isinstance(weighting, StaticWeighting) else None
        if static_weights is not None and heads is not None and set(static_weights) != set(heads):
            raise ValueError(
                f"weights must name exactly the heads {sorted(heads)}, got {sorted(static_weights)}"
            )
        return weighting


@register_loss(
    "multi_task",
    heads=HEAD_TYPES,
    input="a mapping head name -> that head's input",
    target="a mapping head name -> that head's target",
    reference="Kendall et al. (2018), Multi-Task Learning Using Uncertainty to Weigh Losses, CVPR; Liu et al. "
    "(2019), End-to-End Multi-Task Learning with Attention (DWA), CVPR",
    _builtin=True,
)
class MultiTaskLoss(CatalogLoss):
    """Weighted sum of per-head losses: sum_k w_k L_k.

    Schemes:

    * ``static``: fixed w_k (default 1 each), the strong baseline (tuned scalarisation matches specialised
      optimisers, Kurin et al. 2022).
    * ``uncertainty``: sum_k 0.5 exp(-s_k) L_k + 0.5 s_k with learned log-variances s_k, registered as module
      parameters so the optimizer updates them (pass ``loss.parameters()`` to it). The total can be negative.
    * ``dwa``: w_k = K softmax_k(r_k / T), r_k = L_k(t-1) / L_k(t-2) from the mean head losses of the last two
      epochs; weights are 1 until two epochs are recorded. Call :meth:`end_epoch` after each epoch. Assumes
      positive head losses.

    ``last_losses`` holds the detached head losses of the latest call, in head order, for logging.
    """

    Params = MultiTaskParams

    def __init__(self, params: MultiTaskParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        p = self.params
        self.head_names = list(p.heads)
        self.heads = nn.ModuleDict({name: build_loss(spec) for name, spec in p.heads.items()})
        count = len(self.head_names)
        if isinstance(p.weighting, UncertaintyWeighting):
            self.log_vars = nn.Parameter(torch.full((count,), float(p.weighting.init_log_var)))
        static = p.weighting.weights if isinstance(p.weighting, StaticWeighting) else None
        initial = [static[name] for name in self.head_names] if static else [1.0] * count
        self.register_buffer("weights", torch.tensor(initial))
        self.register_buffer("epoch_sums", torch.zeros(count))
        self.register_buffer("epoch_history", torch.zeros(0, count))
        self.epoch_steps = 0
        self.last_losses = torch.zeros(count)

    def forward(self, input: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> Tensor:  # type: ignore[override]
        for side, values in (("input", input), ("target", target)):
            if set(values) != set(self.head_names):
                raise LossInputError(
                    FieldViolation(
                        side, f"multi_task: needs exactly the heads {self.head_names}, got {sorted(values)}"
                    )
                )
        values = [self.heads[name](input[name], target[name]) for name in self.head_names]
        dtype = functools.reduce(torch.promote_types, [value.dtype for value in values])
        losses = torch.stack([value.to(dtype) for value in values])  # float64 heads stay float64
        self.last_losses = losses.detach()
        self.epoch_sums += self.last_losses.to(self.epoch_sums)
        self.epoch_steps += 1
        if isinstance(self.params.weighting, UncertaintyWeighting):
            return (0.5 * torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars).sum()
        return (self.weights.to(losses) * losses).sum()

    def end_epoch(self) -> None:
        """Close an epoch: record its mean head losses and, for DWA, recompute the weights."""
        if self.epoch_steps == 0:
            return
        means = self.epoch_sums / self.epoch_steps
        self.epoch_history = torch.cat([self.epoch_history, means[None]])[-2:]
        self.epoch_sums.zero_()
        self.epoch_steps = 0
        weighting = self.params.weighting
        if isinstance(weighting, DWAWeighting) and len(self.epoch_history) == 2:
            rates = safe_divide(self.epoch_history[1], self.epoch_history[0])
            self.weights = len(self.head_names) * torch.softmax(rates / weighting.temperature, dim=0)
