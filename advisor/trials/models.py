"""Small trial models, stacked so that many members train in one forward and backward pass.

Members are laid out as (seeds, candidates): members of one seed share a batch. Every member starts from the
weights a standalone model built right after ``torch.manual_seed(seed)`` would have, so a stacked member and
its standalone twin train identically (tested).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def standalone_mlp(in_dim: int, hidden: int, out_dim: int, seed: int) -> nn.Sequential:
    """The one-member model a stacked member reproduces: Linear -> ReLU -> Linear, seeded."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class StackedMLP(nn.Module):
    """``seeds x candidates`` two-layer MLPs with stacked weights.

    Layer 1 is one ``baddbmm`` over (seeds, candidates * hidden, in) x (seeds, in, batch); layer 2 one
    ``baddbmm`` over (members, out, hidden) x (members, hidden, batch). Members share no parameters, so
    back-propagating the sum of their losses gives each exactly its standalone gradient.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, seeds: list[int], candidates: int) -> None:
        super().__init__()
        self.seeds, self.candidates, self.hidden = len(seeds), candidates, hidden
        per_seed = [standalone_mlp(in_dim, hidden, out_dim, seed) for seed in seeds]
        repeat = [net for net in per_seed for _ in range(candidates)]  # every candidate of a seed: same start
        self.w1 = nn.Parameter(
            torch.stack([net[0].weight.detach() for net in repeat]).view(len(seeds), -1, in_dim)
        )
        self.b1 = nn.Parameter(torch.stack([net[0].bias.detach() for net in repeat]).view(len(seeds), -1, 1))
        self.w2 = nn.Parameter(torch.stack([net[2].weight.detach() for net in repeat]))
        self.b2 = nn.Parameter(torch.stack([net[2].bias.detach() for net in repeat])[:, :, None])

    @property
    def members(self) -> int:
        return self.seeds * self.candidates

    def forward(self, x: Tensor) -> Tensor:
        """(seeds, batch, in) -> (members, batch, out), member index = seed * candidates + candidate."""
        hidden = torch.relu(torch.baddbmm(self.b1, self.w1, x.transpose(1, 2)))  # (S, K*H, B)
        hidden = hidden.view(self.members, self.hidden, -1)
        return torch.baddbmm(self.b2, self.w2, hidden).transpose(1, 2)
