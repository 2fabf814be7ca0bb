"""Fused loss families equal each member's own catalog loss, in value and in gradient.

The catalog losses themselves are checked against hand-derived formulas in test_loss_values; here every
family member is compared with its own catalog call in float64, alone and mixed with the rest of its family
(mixing turns on terms that other members leave neutral).
"""

from __future__ import annotations

import pytest
import torch

import advisor
from advisor.losses.families import family_of, fused_loss

CLASSES, LABELS, SETS, ROWS = 4, 3, 2, 17
COUNTS = [50, 20, 5, 1]

SOFTMAX = [
    {"loss": "cross_entropy"},
    {"loss": "cross_entropy", "params": {"weight": [1.0, 2.0, 0.5, 3.0]}},
    {"loss": "cross_entropy", "params": {"label_smoothing": 0.1}},
    {"loss": "cross_entropy", "params": {"weight": [1.0, 2.0, 0.5, 3.0], "label_smoothing": 0.2}},
    {"loss": "nll", "params": {"weight": [0.5, 1.0, 1.5, 2.0]}},
    {"loss": "focal", "params": {"gamma": 2.0}},
    {"loss": "focal", "params": {"gamma": 0.5, "alpha": [0.25, 0.75, 0.75, 0.75], "mean_over": "elements"}},
    {"loss": "class_balanced", "params": {"samples_per_class": COUNTS, "beta": 0.99}},
    {"loss": "class_balanced", "params": {"samples_per_class": COUNTS, "beta": 0.999, "gamma": 1.0}},
    {"loss": "ldam", "params": {"samples_per_class": COUNTS, "max_margin": 0.5, "scale": 5.0}},
    {"loss": "ldam", "params": {"samples_per_class": COUNTS, "scale": 2.0, "weight": [1.0, 1.0, 2.0, 4.0]}},
    {"loss": "logit_adjusted", "params": {"samples_per_class": COUNTS, "tau": 1.0}},
    {"loss": "poly1", "params": {"epsilon": 2.0}},
    {"loss": "gce", "params": {"q": 0.7}},
    {"loss": "sce", "params": {"alpha": 0.1, "beta": 1.0}},
]
SIGMOID = [
    {"loss": "bce"},
    {"loss": "bce", "params": {"pos_weight": [3.0, 1.0, 0.5], "weight": [1.0, 2.0, 0.5]}},
    {"loss": "binary_focal"},
    {"loss": "binary_focal", "params": {"gamma": 0.5, "alpha": None}},
    {"loss": "asl"},
    {"loss": "asl", "params": {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.0}},
]
POINT = [
    {"loss": "mse"},
    {"loss": "l1"},
    {"loss": "huber", "params": {"delta": 0.7}},
    {"loss": "smooth_l1", "params": {"beta": 0.5}},
    {"loss": "smooth_l1", "params": {"beta": 0.0}},
]


def _softmax_case(count: int):
    g = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(SETS, count, CLASSES, ROWS, generator=g)).double()
    target = torch.randint(0, CLASSES, (SETS, ROWS), generator=g)
    return logits, target, lambda loss, x, t: loss(x.T.log_softmax(1) if loss.loss_name == "nll" else x.T, t)


def _sigmoid_case(count: int):
    g = torch.Generator().manual_seed(1)
    logits = (3 * torch.randn(SETS, count, LABELS, ROWS, generator=g)).double()
    target = torch.randint(0, 2, (SETS, LABELS, ROWS), generator=g).double()
    return logits, target, lambda loss, x, t: loss(x.T, t.T)


def _point_case(count: int):
    g = torch.Generator().manual_seed(2)
    values = torch.randn(SETS, count, ROWS, generator=g).double()
    target = torch.randn(SETS, ROWS, generator=g).double()
    return values, target, lambda loss, x, t: loss(x, t)


CASES = {
    "softmax": (SOFTMAX, _softmax_case, CLASSES),
    "sigmoid": (SIGMOID, _sigmoid_case, LABELS),
    "point": (POINT, _point_case, 1),
}


def _check(specs, case, width):
    losses = [advisor.build_loss(spec) for spec in specs]
    fused = fused_loss(losses, width, torch.float64)
    inputs, target, own = case(len(losses))
    inputs.requires_grad_(True)
    values = fused(inputs, target)
    assert values.shape == (SETS, len(losses))
    # A different upstream gradient per member and set, so each member's gradient is scaled on its own.
    upstream = torch.linspace(0.5, 2.0, values.numel(), dtype=torch.float64).view_as(values)
    grads = torch.autograd.grad((values * upstream).sum(), inputs)[0]
    for k, loss in enumerate(losses):
        for s in range(SETS):
            single = inputs.detach()[s, k].clone().requires_grad_(True)
            expected = own(loss, single, target[s])
            (expected_grad,) = torch.autograd.grad(expected, single)
            label = f"{specs[k]} set {s}"
            torch.testing.assert_close(values[s, k], expected.detach(), rtol=1e-10, atol=1e-12, msg=label)
            torch.testing.assert_close(
                grads[s, k], upstream[s, k] * expected_grad, rtol=1e-8, atol=1e-12, msg=label
            )


@pytest.mark.parametrize("family", CASES)
def test_mixed_family_equals_each_catalog_loss(family):
    specs, case, width = CASES[family]
    assert all(family_of(advisor.build_loss(spec)) == family for spec in specs)
    _check(specs, case, width)


@pytest.mark.parametrize(
    ("family", "index"), [(family, i) for family, (specs, _, _) in CASES.items() for i in range(len(specs))]
)
def test_single_member_family_equals_its_catalog_loss(family, index):
    specs, case, width = CASES[family]
    _check([specs[index]], case, width)


@pytest.mark.parametrize(
    "spec",
    [
        {"loss": "cross_entropy", "params": {"reduction": "sum"}},
        {"loss": "class_balanced", "params": {"samples_per_class": COUNTS, "activation": "sigmoid"}},
        {"loss": "log_cosh"},
        {"loss": "dice"},
    ],
)
def test_losses_outside_a_family_keep_their_own_call(spec):
    assert family_of(advisor.build_loss(spec)) is None


def test_a_fused_loss_refuses_mixed_families():
    with pytest.raises(ValueError, match="one family"):
        fused_loss([advisor.build_loss({"loss": "mse"}), advisor.build_loss({"loss": "bce"})], 1)
