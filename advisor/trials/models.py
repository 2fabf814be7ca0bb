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
        return self.class_major(x).transpose(1, 2)

    def class_major(self, x: Tensor) -> Tensor:
        """(seeds, batch, in) -> (members, out, batch), contiguous: the layout the matmul writes."""
        hidden = torch.relu(torch.baddbmm(self.b1, self.w1, x.transpose(1, 2)))  # (S, K*H, B)
        hidden = hidden.view(self.members, self.hidden, -1)
        return torch.baddbmm(self.b2, self.w2, hidden)


def standalone_convnet(
    dims: int, in_channels: int, width: int, out_channels: int, seed: int
) -> nn.Sequential:
    """The one-member dense model: conv3 -> ReLU -> conv3 -> ReLU -> conv1 (same-size output), seeded."""
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    torch.manual_seed(seed)
    return nn.Sequential(
        conv(in_channels, width, 3, padding=1),
        nn.ReLU(),
        conv(width, width, 3, padding=1),
        nn.ReLU(),
        conv(width, out_channels, 1),
    )


class StackedConvNet(nn.Module):
    """``seeds x candidates`` small fully convolutional nets as grouped convolutions (one group per member).

    Input (seeds, batch, channels, *spatial); output (members, batch, out_channels, *spatial). With
    ``residual`` the input is added to the output (a denoiser predicts a correction to its input).
    """

    def __init__(
        self, dims: int, in_channels: int, width: int, out_channels: int, seeds: list[int], candidates: int,
        *, residual: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.dims, self.seeds, self.candidates, self.residual = dims, len(seeds), candidates, residual
        per_seed = [standalone_convnet(dims, in_channels, width, out_channels, seed) for seed in seeds]
        repeat = [net for net in per_seed for _ in range(candidates)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.cat([net[i].weight.detach() for net in repeat])) for i in (0, 2, 4)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.cat([net[i].bias.detach() for net in repeat])) for i in (0, 2, 4)
        )

    @property
    def members(self) -> int:
        return self.seeds * self.candidates

    def forward(self, x: Tensor) -> Tensor:
        seeds, batch = x.shape[:2]
        spatial = x.shape[3:]
        # Every candidate of a seed reads that seed's batch: (batch, members * channels, *spatial).
        grouped = x.unsqueeze(2).expand(seeds, batch, self.candidates, *x.shape[2:])
        grouped = grouped.permute(1, 0, 2, *range(3, x.dim() + 1)).reshape(batch, -1, *spatial)
        conv = nn.functional.conv2d if self.dims == 2 else nn.functional.conv1d
        hidden = grouped
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            hidden = conv(hidden, weight, bias, padding=1 if layer < 2 else 0, groups=self.members)
            if layer < 2:
                hidden = torch.relu(hidden)
        out = hidden.view(batch, self.members, -1, *spatial).transpose(0, 1)
        if self.residual:
            out = out + grouped.view(batch, self.members, -1, *spatial).transpose(0, 1)
        return out
