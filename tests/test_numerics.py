"""Numerical edge cases: saturated logits, extreme residuals, empty masks, zero counts, everything ignored."""

from __future__ import annotations

import math

import pytest
import torch

import advisor


def _value_and_grad(spec, input, target):
    input = input.clone().requires_grad_()
    value = advisor.build_loss(spec)(input, target)
    value.sum().backward()
    return value, input.grad


def _assert_finite(value, grad):
    assert torch.isfinite(value).all(), value
    assert torch.isfinite(grad).all(), grad


def test_log_cosh_at_residual_100_is_exact_in_float32():
    pred = torch.tensor([100.0, -100.0, 0.5])
    target = torch.zeros(3)
    value, grad = _value_and_grad({"loss": "log_cosh", "params": {"reduction": "none"}}, pred, target)
    expected = [100 - math.log(2), 100 - math.log(2), math.log(math.cosh(0.5))]
    torch.testing.assert_close(value, torch.tensor(expected), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, torch.tensor([1.0, -1.0, math.tanh(0.5)]))


SATURATED_MULTICLASS = [
    {"loss": "cross_entropy"},
    {"loss": "cross_entropy", "params": {"label_smoothing": 0.1}},
    {"loss": "focal", "params": {"gamma": 2.0}},
    {"loss": "focal", "params": {"gamma": 0.5, "alpha": [1.0, 2.0, 3.0]}},
    {"loss": "class_balanced", "params": {"samples_per_class": [100, 0, 3], "gamma": 0.5}},
    {
        "loss": "class_balanced",
        "params": {"samples_per_class": [100, 0, 3], "activation": "sigmoid", "gamma": 0.5},
    },
    {"loss": "ldam", "params": {"samples_per_class": [100, 0, 3]}},
    {"loss": "logit_adjusted", "params": {"samples_per_class": [100, 0, 3]}},
    {"loss": "poly1"},
    {"loss": "gce"},
    {"loss": "sce"},
]


@pytest.mark.parametrize("spec", SATURATED_MULTICLASS, ids=lambda s: str(s))
@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_multiclass_losses_stay_finite_on_saturated_logits(spec, scale):
    logits = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5], [0.0, 0.0, 1.0], [1.0, 0.0, -1.0]]) * scale
    target = torch.tensor([0, 0, 2, 1])  # confident right, confident wrong, and in between
    _assert_finite(*_value_and_grad(spec, logits, target))


@pytest.mark.parametrize(
    "spec",
    [
        {"loss": "bce", "params": {"pos_weight": [3.0, 1.0, 0.5]}},
        {"loss": "binary_focal", "params": {"gamma": 0.5}},
        {"loss": "binary_focal", "params": {"gamma": 2.0, "alpha": None}},
        {"loss": "asl"},
        {"loss": "asl", "params": {"clip": 0.0, "gamma_neg": 0.5, "gamma_pos": 0.0}},
    ],
    ids=lambda s: str(s),
)
@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_binary_losses_stay_finite_on_saturated_logits(spec, scale):
    logits = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5]]) * scale
    target = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    _assert_finite(*_value_and_grad(spec, logits, target))


def test_binary_focal_gradient_vanishes_for_confident_right_answers():
    # A saturated, correct logit must give a zero, not NaN, gradient even for gamma < 1.
    value, grad = _value_and_grad(
        {"loss": "binary_focal", "params": {"gamma": 0.5}}, torch.tensor([200.0]), torch.tensor([1.0])
    )
    assert value.item() == 0.0 and grad.item() == 0.0


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky", "focal_tversky", "dice_ce"])
def test_overlap_losses_on_empty_masks(name):
    logits = torch.randn(2, 2, 4, 4)
    background_only = torch.zeros(2, 4, 4, dtype=torch.long)
    _assert_finite(*_value_and_grad({"loss": name}, logits, background_only))
    # Foreground absent everywhere and skipped: only background is scored; without it nothing is, giving 0.
    skip = {"loss": name, "params": {"empty": "skip", "include_background": False}}
    value, grad = _value_and_grad(skip, logits, background_only)
    _assert_finite(value, grad)
    if name != "dice_ce":
        assert value.item() == 0.0


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky", "focal_tversky"])
def test_empty_target_and_empty_prediction_score_zero_with_smoothing(name):
    probs = torch.zeros(1, 1, 3, 3)
    mask = torch.zeros(1, 3, 3, dtype=torch.long)
    value, grad = _value_and_grad({"loss": name, "params": {"activation": "none"}}, probs, mask)
    assert value.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize(
    "spec",
    [
        {"loss": "cross_entropy", "params": {"weight": [1.0, 2.0, 3.0]}},
        {"loss": "nll"},
        {"loss": "focal"},
        {"loss": "poly1"},
        {"loss": "gce"},
        {"loss": "sce"},
        {"loss": "logit_adjusted", "params": {"samples_per_class": [5, 0, 1]}},
        {"loss": "ldam", "params": {"samples_per_class": [5, 0, 1]}},
        {"loss": "class_balanced", "params": {"samples_per_class": [5, 0, 1]}},
    ],
    ids=lambda s: s["loss"],
)
def test_all_targets_ignored_gives_zero_mean_and_zero_gradient(spec):
    value, grad = _value_and_grad(spec, torch.randn(4, 3), torch.full((4,), -100))
    assert value.item() == 0.0
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("name", ["bce", "binary_focal", "asl"])
def test_binary_losses_skip_ignored_entries(name):
    logits = torch.randn(3, 2)
    target = torch.tensor([[1.0, -1.0], [0.0, -1.0], [1.0, 0.0]])
    spec = {"loss": name, "params": {"ignore_index": -1}}
    value, grad = _value_and_grad(spec, logits, target)
    assert torch.equal(grad[:2, 1], torch.zeros(2))
    keep = torch.tensor([[True, False], [True, False], [True, True]])
    reference = advisor.build_loss({"loss": name, "params": {"reduction": "sum"}})(logits[keep], target[keep])
    torch.testing.assert_close(value, reference / keep.sum())


def test_zero_class_counts_give_finite_weights_margins_and_priors():
    from advisor.losses.classification import class_balanced_weights

    weights = class_balanced_weights([0, 10, 1000], 0.999, torch.zeros(0))
    assert torch.isfinite(weights).all() and weights.sum().item() == pytest.approx(3.0)


@pytest.mark.parametrize("name", ["gaussian_nll", "beta_nll"])
def test_nll_with_extreme_log_variance_is_finite(name):
    input = torch.tensor([[0.0, -80.0], [0.0, 80.0], [3.0, 0.0]])
    _assert_finite(*_value_and_grad({"loss": name}, input, torch.tensor([1.0, 1.0, 0.0])))


def test_out_of_range_class_index_is_a_clear_error():
    with pytest.raises(advisor.LossInputError, match=r"class index 7 outside \[0, 2\]"):
        advisor.build_loss({"loss": "focal"})(torch.randn(2, 3), torch.tensor([0, 7]))


def test_per_class_list_of_wrong_length_is_a_clear_error():
    with pytest.raises(advisor.LossInputError, match=r"params\.weight"):
        advisor.build_loss({"loss": "cross_entropy", "params": {"weight": [1.0, 2.0]}})(
            torch.randn(2, 3), torch.tensor([0, 1])
        )
