"""The segmentation trial net: every StackedUNet member computes what its standalone seeded U-Net computes
(outputs and gradients, odd and tiny image sizes), trains like it inside the batched trainer, and is the net
segmentation trials use (audio keeps its residual conv net)."""

from __future__ import annotations

import pytest
import torch

import advisor
from advisor.task import Head
from advisor.trials.adapters import adapter_for, seed_pooling
from advisor.trials.data import Splits, TrialData
from advisor.trials.evidence import _model_factory
from advisor.trials.models import StackedConvNet, StackedUNet, TrialUNet, standalone_unet
from advisor.trials.trainer import (
    UNET_LEVELS,
    UNET_WIDTH_DIVISOR,
    BatchedTrainer,
    Member,
    TrainConfig,
    _batches,
)

SEEDS, CANDIDATES = [3, 11], 3
IN, WIDTH, OUT = 2, 4, 3


def _members_against_standalone(levels: int, height: int, width: int) -> None:
    """Forward and backward through the stack once; compare every member with its seed's standalone net."""
    stacked = StackedUNet(IN, WIDTH, OUT, SEEDS, CANDIDATES, levels=levels).double()
    x = torch.randn(
        len(SEEDS), 5, IN, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    out = stacked(x)
    members = len(SEEDS) * CANDIDATES
    assert out.shape == (members, 5, OUT, height, width)
    # A different upstream gradient per member: a member that read another's channels would show it.
    upstream = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (out * upstream).sum().backward()
    for member in range(members):
        seed_index, _ = divmod(member, CANDIDATES)
        alone = standalone_unet(IN, WIDTH, OUT, SEEDS[seed_index], levels).double()
        expected = alone(x[seed_index])
        torch.testing.assert_close(out[member], expected, rtol=0, atol=1e-12)
        (expected * upstream[member]).sum().backward()
        for layer, conv in enumerate(alone.convolutions()):
            rows = slice(member * conv.out_channels, (member + 1) * conv.out_channels)
            torch.testing.assert_close(
                stacked.weights[layer].grad[rows], conv.weight.grad, rtol=0, atol=1e-10
            )
            torch.testing.assert_close(stacked.biases[layer].grad[rows], conv.bias.grad, rtol=0, atol=1e-10)


@pytest.mark.parametrize("levels", [1, 2])
def test_every_stacked_member_equals_its_standalone_unet_on_an_odd_image(levels):
    _members_against_standalone(
        levels, 13, 9
    )  # odd sides: pooling rounds up, upsampling meets the skip's size


def test_images_smaller_than_the_pooling_still_work():
    _members_against_standalone(2, 1, 3)


def test_members_start_from_their_seeds_weights_and_the_architecture_is_as_documented():
    net = standalone_unet(1, 8, 2, seed=5, levels=2)
    assert isinstance(net, TrialUNet)
    shapes = [tuple(conv.weight.shape) for conv in net.convolutions()]
    assert shapes == [
        (8, 1, 3, 3),
        (16, 8, 3, 3),
        (32, 16, 3, 3),
        (16, 48, 3, 3),
        (8, 24, 3, 3),
        (2, 8, 1, 1),
    ]
    stacked = StackedUNet(1, 8, 2, [5, 6], 2, levels=2)
    again = standalone_unet(1, 8, 2, seed=6, levels=2)
    for layer, conv in enumerate(again.convolutions()):
        per_member = stacked.weights[layer].view(4, *conv.weight.shape)
        assert torch.equal(per_member[2], conv.weight) and torch.equal(per_member[3], conv.weight)


def test_a_stacked_member_trains_like_its_standalone_unet():
    head = Head(type="segmentation", num_classes=3)
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (24, 9, 7), generator=generator)
    x = (y[:, None].float() + 0.5 * torch.randn(24, 1, 9, 7, generator=generator)).contiguous()
    specs = [
        advisor.normalize_spec(s) for s in ({"loss": "dice_ce"}, {"loss": "focal", "params": {"gamma": 2.0}})
    ]
    members = [Member(advisor.build_loss(s), adapter_for(head, s), seed_pooling(s)) for s in specs]
    config = TrainConfig(seeds=(3, 7), epochs=2, batch_size=8, hidden=32, lr=1e-2)
    factory = _model_factory(TrialData(head, x, y), config)
    trainer = BatchedTrainer(members, factory, config)
    assert isinstance(trainer.models[0], StackedUNet)
    rows = torch.arange(24)
    splits = Splits(0, rows.expand(2, 24), rows[:8].expand(2, 8), 4)
    epochs = iter(range(100))
    run = trainer.fit(
        x,
        y,
        splits,
        lambda c, r, o: float(next(epochs)),
        higher_is_better=True,
        patience={"best_epoch": None},
    )
    for member in run.members:
        seed = config.seeds[member.repeat]
        model = standalone_unet(1, config.hidden // UNET_WIDTH_DIVISOR, 3, seed, UNET_LEVELS)
        loss = advisor.build_loss(specs[member.candidate])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=config.weight_decay)
        for epoch in range(2):
            for indices in _batches(splits, 8, config.seeds, epoch)[:, member.repeat]:
                value = loss(model(x[indices]), y[indices])
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
        with torch.no_grad():
            alone = model(x[:8])
        torch.testing.assert_close(member.choices["best_epoch"].output, alone, rtol=1e-4, atol=1e-5)


def test_segmentation_trials_use_the_unet_and_audio_keeps_its_residual_conv_net():
    config = TrainConfig(seeds=(0, 1))
    images = TrialData(
        Head(type="segmentation", num_classes=2), torch.zeros(4, 3, 8, 8), torch.zeros(4, 8, 8)
    )
    clips = TrialData(Head(type="audio", sample_rate=8000), torch.zeros(4, 1, 64), torch.zeros(4, 1, 64))
    unet, conv = _model_factory(images, config)(2, 5), _model_factory(clips, config)(1, 5)
    assert isinstance(unet, StackedUNet) and unet.members == 10 and unet.levels == UNET_LEVELS
    assert isinstance(conv, StackedConvNet) and conv.residual
