"""torch.autograd.gradcheck in float64 for every loss the project implements itself (not the torch or
auraloss wrappers). Inputs are small, generic and away from kinks: no quantile error at 0, no tied Lovasz
errors, no ASL probability at the clip margin, no clamped variance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import advisor


def build(name, **params):
    return advisor.build_loss({"loss": name, "params": params})


def leaf(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def const(a, dtype=torch.float64):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def assert_gradcheck(loss, x, y):
    assert gradcheck(lambda inp: loss(inp, y), (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


def rng(seed):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------------ regression


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_log_cosh(reduction):
    g = rng(0)
    assert_gradcheck(
        build("log_cosh", reduction=reduction), leaf(g.normal(size=(3, 4)) * 3), const(g.normal(size=(3, 4)))
    )


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_quantile(reduction):
    g = rng(1)
    y = g.normal(size=5)
    offsets = g.uniform(0.1, 1.0, size=(5, 3)) * g.choice([-1.0, 1.0], size=(5, 3))  # |error| >= 0.1
    loss = build("quantile", quantiles=[0.1, 0.5, 0.9], reduction=reduction)
    assert_gradcheck(loss, leaf(y[:, None] + offsets), const(y))


@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll(full):
    g = rng(2)
    x = np.stack([g.normal(size=(3, 2)), g.uniform(-1.5, 1.5, size=(3, 2))], axis=-1)  # log-var >> log(eps)
    assert_gradcheck(build("gaussian_nll", full=full), leaf(x), const(g.normal(size=(3, 2))))


def test_beta_nll_beta_zero_full_input():
    g = rng(3)
    x = np.stack([g.normal(size=4), g.uniform(-1.0, 1.0, size=4)], axis=-1)
    assert_gradcheck(build("beta_nll", beta=0.0), leaf(x), const(g.normal(size=4)))


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_beta_nll_wrt_mean(beta):
    # The variance weight is a stop-gradient, so a finite difference in the log-variance sees a derivative
    # autograd (correctly) does not: gradcheck the mean column with the log-variance held fixed.
    g = rng(4)
    log_var, y = const(g.uniform(-1.0, 1.0, size=(3, 2))), const(g.normal(size=(3, 2)))
    loss = build("beta_nll", beta=beta)
    assert gradcheck(lambda mean: loss(torch.stack([mean, log_var], -1), y), (leaf(g.normal(size=(3, 2))),))


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_beta_nll_log_var_gradient_is_stop_gradient_weighted(beta):
    # d/ds [sg(v^beta) * 0.5 (s + r^2 e^-s)] = v^beta * 0.5 (1 - r^2 e^-s), v = e^s, 'sum' reduction.
    g = rng(5)
    mean, s, y = g.normal(size=5), g.uniform(-1.0, 1.0, size=5), g.normal(size=5)
    x = leaf(np.stack([mean, s], axis=-1))
    build("beta_nll", beta=beta, reduction="sum")(x, const(y)).backward()
    expected_s = np.exp(beta * s) * 0.5 * (1 - (y - mean) ** 2 * np.exp(-s))
    expected_mean = np.exp(beta * s) * (mean - y) * np.exp(-s)
    np.testing.assert_allclose(x.grad[:, 1].numpy(), expected_s, rtol=1e-10)
    np.testing.assert_allclose(x.grad[:, 0].numpy(), expected_mean, rtol=1e-10)


@pytest.mark.parametrize("power", [1.5, 1.2])
def test_tweedie(power):
    g = rng(6)
    y = np.where(g.uniform(size=(3, 3)) < 0.3, 0.0, g.gamma(2.0, 1.0, size=(3, 3)))
    assert_gradcheck(build("tweedie", power=power), leaf(g.normal(size=(3, 3))), const(y))


# -------------------------------------------------------------------------------------------- classification


def _classification(seed, n=5, c=4):
    g = rng(seed)
    z = g.normal(size=(n, c)) * 1.5
    y = g.integers(0, c, size=n)
    y[0] = -1  # one ignored entry
    return leaf(z), const(y, torch.int64)


CLASS_INDEX_CASES = [
    ("focal", {"gamma": 2.0, "alpha": [0.25, 0.75, 0.5, 1.0], "ignore_index": -1}),
    ("focal", {"gamma": 0.5, "mean_over": "elements", "ignore_index": -1, "reduction": "none"}),
    ("class_balanced", {"samples_per_class": [100, 20, 5, 0], "beta": 0.99, "ignore_index": -1}),
    ("class_balanced", {"samples_per_class": [100, 20, 5, 1], "beta": 0.999, "gamma": 1.5, "ignore_index": -1}),
    ("class_balanced", {"samples_per_class": [100, 20, 5, 1], "gamma": 2.0, "activation": "sigmoid",
                        "ignore_index": -1}),
    ("class_balanced", {"samples_per_class": [100, 20, 5, 1], "activation": "sigmoid", "ignore_index": -1,
                        "reduction": "none"}),
    ("ldam", {"samples_per_class": [100, 20, 5, 1], "scale": 4.0, "ignore_index": -1}),
    ("ldam", {"samples_per_class": [100, 20, 5, 1], "scale": 3.0, "weight": [0.5, 1.0, 2.0, 3.0],
              "ignore_index": -1}),
    ("logit_adjusted", {"samples_per_class": [100, 20, 5, 1], "tau": 0.7, "ignore_index": -1}),
    ("poly1", {"epsilon": 2.0, "ignore_index": -1}),
    ("gce", {"q": 0.7, "ignore_index": -1}),
    ("gce", {"q": 0.3, "ignore_index": -1, "reduction": "none"}),
    ("sce", {"alpha": 0.3, "beta": 1.5, "log_zero": -4.0, "ignore_index": -1}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params"), CLASS_INDEX_CASES)
def test_class_index_losses(name, params):
    z, y = _classification(10)
    assert_gradcheck(build(name, **params), z, y)


def test_focal_spatial_input():
    g = rng(11)
    z = leaf(g.normal(size=(2, 3, 2, 2)))
    y = const(g.integers(0, 3, size=(2, 2, 2)), torch.int64)
    assert_gradcheck(build("focal", gamma=2.0, alpha=[0.3, 1.0, 2.0]), z, y)


@pytest.mark.parametrize(
    "params", [{}, {"gamma": 0.5, "alpha": 0.6}, {"gamma": 1.0, "alpha": None, "reduction": "none"}]
)
def test_binary_focal(params):
    g = rng(12)
    x = g.normal(size=(3, 4)) * 2
    y = (g.uniform(size=(3, 4)) < 0.4).astype(np.float64)
    y[0, 0] = -1.0
    assert_gradcheck(build("binary_focal", ignore_index=-1, **params), leaf(x), const(y))


@pytest.mark.parametrize(
    "params",
    [{}, {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.2}, {"clip": 0.0, "reduction": "none"}],
)
def test_asl(params):
    g = rng(13)
    x = g.normal(size=(3, 5)) * 2
    x[0, :2] = [-4.0, -3.5]  # p below the clip margin: flat negative term
    clip = params.get("clip", 0.05)
    p = 1 / (1 + np.exp(-x))
    assert np.abs(p - clip).min() > 1e-3  # away from the kink at p = clip
    y = (g.uniform(size=(3, 5)) < 0.4).astype(np.float64)
    y[0, :2] = 0.0
    assert_gradcheck(build("asl", **params), leaf(x), const(y))


# ---------------------------------------------------------------------------------------------- segmentation


def _segmentation(seed, n=2, c=3, shape=(2, 3), ignore=None):
    g = rng(seed)
    z = g.normal(size=(n, c, *shape)) * 1.5
    y = g.integers(0, c, size=(n, *shape))
    if ignore is not None:
        y[0, 0, 0] = ignore
    return leaf(z), const(y, torch.int64)


SEG_CASES = [
    {},
    {"batch": True, "include_background": False},
    {"activation": "sigmoid", "reduction": "none"},
    {"squared_pred": True, "ignore_index": 255},
    {"smooth_nr": 0.0, "smooth_dr": 0.1, "reduction": "sum"},
]


@pytest.mark.parametrize("params", SEG_CASES)
@pytest.mark.parametrize("name", ["dice", "jaccard"])
def test_dice_and_jaccard(name, params):
    z, y = _segmentation(20, ignore=params.get("ignore_index"))
    assert_gradcheck(build(name, **params), z, y)


@pytest.mark.parametrize("params", [p for p in SEG_CASES if "squared_pred" not in p])
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("tversky", {"fp_weight": 0.2, "fn_weight": 0.8}),
        ("focal_tversky", {"fp_weight": 0.2, "fn_weight": 0.8, "gamma": 0.75}),
        ("focal_tversky", {"fp_weight": 0.6, "fn_weight": 0.4, "gamma": 2.0}),
    ],
)
def test_tversky_and_focal_tversky(name, extra, params):
    z, y = _segmentation(21)
    assert_gradcheck(build(name, **params, **extra), z, y)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"batch": True, "include_background": False, "ce_weight": [0.2, 1.0, 2.0], "ignore_index": 255},
        {"activation": "sigmoid", "lambda_dice": 0.5, "lambda_ce": 2.0},
        {"reduction": "sum"},
    ],
)
def test_dice_ce(params):
    z, y = _segmentation(22, ignore=params.get("ignore_index"))
    assert_gradcheck(build("dice_ce", **params), z, y)


def test_dice_ce_soft_target():
    g = rng(23)
    target = np.exp(g.normal(size=(2, 3, 4)))
    target /= target.sum(1, keepdims=True)
    assert_gradcheck(build("dice_ce"), leaf(g.normal(size=(2, 3, 4))), const(target))


def _no_ties(values, gap=1e-3):
    ordered = np.sort(np.asarray(values).reshape(-1))
    return np.diff(ordered).min() > gap


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"classes": "all"},
        {"per_image": True},
        {"per_image": True, "reduction": "none"},
        {"ignore_index": 255},
    ],
)
def test_lovasz_softmax(params):
    z, y = _segmentation(24, c=3, shape=(3, 3), ignore=params.get("ignore_index"))
    zn = z.detach().numpy()
    probs = np.exp(zn) / np.exp(zn).sum(1, keepdims=True)
    for c in range(3):  # errors |1[y = c] - p_c| of each class must be distinct
        assert _no_ties(np.abs((y.numpy() == c) - probs[:, c]))
    assert_gradcheck(build("lovasz", **params), z, y)


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_hinge(per_image):
    g = rng(25)
    y = g.integers(0, 2, size=(2, 3, 3))
    x = g.normal(size=(2, 1, 3, 3)) * 2
    errors = 1 - x[:, 0] * (2 * y - 1)
    assert _no_ties(errors) and np.abs(errors).min() > 1e-3  # distinct and away from the hinge at 0
    assert_gradcheck(build("lovasz", variant="hinge", per_image=per_image), leaf(x), const(y, torch.int64))


# ------------------------------------------------------------------------------------------------ multi_task


@pytest.mark.parametrize(
    "weighting", [{"scheme": "static", "weights": {"reg": 2.0, "cls": 0.5}}, {"scheme": "uncertainty"}]
)
def test_multi_task_wrt_one_head(weighting):
    g = rng(30)
    heads = {
        "reg": {"loss": "log_cosh"},
        "cls": {"loss": "focal", "params": {"gamma": 1.5, "ignore_index": -1}},
    }
    loss = build("multi_task", heads=heads, weighting=weighting).double()
    z, y = _classification(31)
    reg_x, reg_y = const(g.normal(size=(4, 2))), const(g.normal(size=(4, 2)))

    def total(cls_input):
        return loss({"reg": reg_x, "cls": cls_input}, {"reg": reg_y, "cls": y})

    assert gradcheck(total, (z,), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("scheme", ["static", "uncertainty"])
def test_multi_task_gradients_by_formula(scheme):
    # d total / d x_cls = w_cls * d L_cls / d x_cls with
    # w = 0.5 exp(-s) for uncertainty weighting, and d total / d s_k = 0.5 - 0.5 exp(-s_k) L_k.
    g = rng(32)
    heads = {
        "reg": {"loss": "log_cosh"},
        "cls": {"loss": "focal", "params": {"gamma": 1.5, "ignore_index": -1}},
    }
    weighting = (
        {"scheme": "static", "weights": {"reg": 2.0, "cls": 0.5}}
        if scheme == "static"
        else {"scheme": "uncertainty", "init_log_var": 0.3}
    )
    loss = build("multi_task", heads=heads, weighting=weighting)
    z, y = _classification(33)
    reg_x, reg_y = const(g.normal(size=(4, 2))), const(g.normal(size=(4, 2)))
    loss({"reg": reg_x, "cls": z}, {"reg": reg_y, "cls": y}).backward()
    z_alone = z.detach().clone().requires_grad_(True)
    head = build("focal", gamma=1.5, ignore_index=-1)(z_alone, y)
    head.backward()
    w_cls = 0.5 if scheme == "static" else 0.5 * np.exp(-0.3)
    np.testing.assert_allclose(z.grad.numpy(), w_cls * z_alone.grad.numpy(), rtol=1e-6, atol=1e-9)
    if scheme == "uncertainty":
        reg = build("log_cosh")(reg_x, reg_y).item()
        expected = [0.5 - 0.5 * np.exp(-0.3) * reg, 0.5 - 0.5 * np.exp(-0.3) * head.item()]
        np.testing.assert_allclose(loss.log_vars.grad.numpy(), expected, rtol=1e-6)


# ------------------------------------------------------------------------------------------------ distribution


@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("input_format", ["log_probs", "logits"])
def test_kl_div(log_target, input_format):
    g = rng(40)
    logits = g.normal(size=(3, 4))
    x = logits if input_format == "logits" else logits - np.log(np.exp(logits).sum(1, keepdims=True))
    target = g.dirichlet(np.ones(4), size=3)
    target[0, 1] = 0.0  # a zero-probability class contributes 0 and a finite gradient
    target /= target.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):
        y = np.log(target) if log_target else target
    loss = build("kl_div", input_format=input_format, log_target=log_target)
    assert_gradcheck(loss, leaf(x), const(y))
