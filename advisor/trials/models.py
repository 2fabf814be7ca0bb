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


class TrialUNet(nn.Module):
    """A small U-Net: the one-member segmentation model a :class:`StackedUNet` member reproduces.

    With width ``w`` and ``levels`` L, level l works at 1 / 2^l of the input's resolution with 2^l w channels::

        e_0 = ReLU(conv3(in -> w)(x))
        e_l = ReLU(conv3(2^(l-1) w -> 2^l w)(avgpool2(e_(l-1))))                    l = 1..L
        d_L = e_L
        d_l = ReLU(conv3(3 * 2^l w -> 2^l w)(cat[up(d_(l+1)) to e_l's size, e_l]))  l = L-1..0
        out = conv1(w -> out)(d_0)

    Pooling rounds up (``ceil_mode``: a 63 x 48 image gives 32 x 24) and ``up`` is bilinear to the skip's exact
    size, so any image size works, odd ones and sides under 2^L included. The pooled levels widen what a pixel's
    output sees, from 5 px a side for three full-resolution 3x3 convolutions to 12 px (L = 1) and 30 px
    (L = 2), at little cost: each level has a quarter of the pixels of the one above.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, levels: int) -> None:
        super().__init__()
        self.levels = levels
        channels = [width << level for level in range(levels + 1)]
        self.encoders = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, padding=1)
            for c_in, c_out in zip([in_channels, *channels[:-1]], channels, strict=True)
        )
        self.decoders = nn.ModuleList(
            nn.Conv2d(channels[level + 1] + channels[level], channels[level], 3, padding=1)
            for level in reversed(range(levels))
        )
        self.head = nn.Conv2d(width, out_channels, 1)

    def convolutions(self) -> list[nn.Conv2d]:
        """Every convolution in the order :meth:`forward` applies them."""
        return [*self.encoders, *self.decoders, self.head]

    def forward(self, x: Tensor) -> Tensor:
        """(batch, in, H, W) -> (batch, out, H, W)."""
        return unet_forward(x, [(conv.weight, conv.bias) for conv in self.convolutions()], self.levels, 1)


def unet_forward(x: Tensor, layers: list[tuple[Tensor, Tensor]], levels: int, groups: int) -> Tensor:
    """:class:`TrialUNet`'s forward pass for ``groups`` independent nets whose channels lie side by side.

    ``x`` is (batch, groups * channels, H, W), member-major, and ``layers`` the (weight, bias) of each
    convolution in :meth:`TrialUNet.convolutions` order, weights concatenated over the groups. Pooling and
    upsampling act on each channel alone, so they need no grouping; a skip concatenation must join each
    member's own channels, so it goes through (batch, groups, channels, H, W).
    """
    encoders, decoders, head = layers[: levels + 1], layers[levels + 1 : -1], layers[-1]
    skips = []
    hidden = x
    for level, (weight, bias) in enumerate(encoders):
        if level:
            skips.append(hidden)
            hidden = nn.functional.avg_pool2d(hidden, 2, ceil_mode=True)
        hidden = torch.relu(nn.functional.conv2d(hidden, weight, bias, padding=1, groups=groups))
    for (weight, bias), skip in zip(decoders, reversed(skips), strict=True):
        batch, _, height, width = skip.shape
        up = nn.functional.interpolate(hidden, size=(height, width), mode="bilinear", align_corners=False)
        joined = torch.cat(
            [up.view(batch, groups, -1, height, width), skip.view(batch, groups, -1, height, width)], dim=2
        ).view(batch, -1, height, width)
        hidden = torch.relu(nn.functional.conv2d(joined, weight, bias, padding=1, groups=groups))
    return nn.functional.conv2d(hidden, head[0], head[1], groups=groups)


def standalone_unet(in_channels: int, width: int, out_channels: int, seed: int, levels: int = 1) -> TrialUNet:
    """The one-member segmentation model, built right after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return TrialUNet(in_channels, width, out_channels, levels)


class StackedUNet(nn.Module):
    """``seeds x candidates`` :class:`TrialUNet` members as grouped convolutions (one group per member).

    Input (seeds, batch, channels, H, W); output (members, batch, out_channels, H, W), member index = seed *
    candidates + candidate. Each member starts from its seed's standalone :func:`standalone_unet` weights.
    """

    def __init__(
        self, in_channels: int, width: int, out_channels: int, seeds: list[int], candidates: int,
        *, levels: int = 1,
    ) -> None:  # fmt: skip
        super().__init__()
        self.seeds, self.candidates, self.levels = len(seeds), candidates, levels
        per_seed = [standalone_unet(in_channels, width, out_channels, seed, levels) for seed in seeds]
        repeat = [net.convolutions() for net in per_seed for _ in range(candidates)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.cat([convs[i].weight.detach() for convs in repeat]))
            for i in range(len(repeat[0]))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.cat([convs[i].bias.detach() for convs in repeat]))
            for i in range(len(repeat[0]))
        )

    @property
    def members(self) -> int:
        return self.seeds * self.candidates

    def forward(self, x: Tensor) -> Tensor:
        seeds, batch, channels, height, width = x.shape
        # Every candidate of a seed reads that seed's batch: (batch, members * channels, H, W).
        grouped = x.unsqueeze(2).expand(seeds, batch, self.candidates, channels, height, width)
        grouped = grouped.permute(1, 0, 2, 3, 4, 5).reshape(batch, -1, height, width)
        layers = list(zip(self.weights, self.biases, strict=True))
        out = unet_forward(grouped, layers, self.levels, self.members)
        return out.view(batch, self.members, -1, height, width).transpose(0, 1)
