"""Every catalog loss against an independent float64 numpy derivation of its published formula.

Expected values come from ``tests/reference.py`` (numpy only) or from plain arithmetic; torch is used only to
carry the inputs and the library only to produce the actual value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import advisor
from tests import reference as ref

RTOL = 1e-10
ATOL = 1e-12


def build(name, **params):
    return advisor.build_loss({"loss": name, "params": params})


def t(a, dtype=torch.float64):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def idx(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.int64)


def value(loss, x, y):
    with torch.no_grad():
        out = loss(x, y)
    assert out.dtype == torch.float64, f"float64 in, {out.dtype} out"
    return out.numpy()


def check(actual, expected, rtol=RTOL, atol=ATOL):
    expected = np.asarray(expected, dtype=np.float64)
    assert np.shape(actual) == expected.shape, (np.shape(actual), expected.shape)
    assert_allclose(actual, expected, rtol=rtol, atol=atol)


def rng(seed):
    return np.random.default_rng(seed)


REDUCTIONS = ["none", "sum", "mean"]

# -------------------------------------------------------------------------------------------- catalog coverage

# compound: its values are checked in tests/test_compound.py.
TESTED = {
    "asl", "bce", "beta_nll", "binary_focal", "class_balanced", "compound", "cross_entropy", "dice", "dice_ce",
    "esr", "focal",
    "focal_tversky", "gaussian_nll", "gce", "huber", "jaccard", "kl_div", "l1", "ldam", "log_cosh",
    "logit_adjusted", "lovasz", "mr_stft", "mse", "multi_task", "nll", "poisson_nll", "poly1", "quantile", "sce",
    "si_sdr", "smooth_l1", "snr", "stft", "tversky", "tweedie",
}  # fmt: skip


def test_every_catalog_loss_has_a_value_test():
    assert set(advisor.loss_names()) <= TESTED, sorted(set(advisor.loss_names()) - TESTED)


# ------------------------------------------------------------------------------------------------ regression

CLASSIC_PRED, CLASSIC_TARGET = [2.0, 3.0, 4.0], [3.0, 3.0, 5.0]


@pytest.mark.parametrize(("name", "params", "expected"), [
    ("mse", {}, 2 / 3),
    ("l1", {}, 2 / 3),
    ("huber", {"delta": 1.0}, 1 / 3),
    ("smooth_l1", {"beta": 1.0}, 1 / 3),
])  # fmt: skip
def test_classic_regression_example(name, params, expected):
    check(value(build(name, **params), t(CLASSIC_PRED), t(CLASSIC_TARGET)), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "params", "formula"), [
    ("mse", {}, ref.mse),
    ("l1", {}, ref.l1),
    ("huber", {"delta": 0.7}, lambda x, y: ref.huber(x, y, 0.7)),
    ("smooth_l1", {"beta": 0.6}, lambda x, y: ref.smooth_l1(x, y, 0.6)),
    ("log_cosh", {}, ref.log_cosh),
])  # fmt: skip
def test_pointwise_regression(name, params, formula, reduction):
    g = rng(1)
    x, y = g.normal(size=(4, 3)), g.normal(size=(4, 3)) * 1.5
    expected = ref.reduce(formula(x, y), reduction)
    check(value(build(name, reduction=reduction, **params), t(x), t(y)), expected)


def test_huber_is_delta_times_smooth_l1():
    g = rng(2)
    x, y = g.normal(size=8) * 3, g.normal(size=8)
    huber = value(build("huber", delta=1.7, reduction="none"), t(x), t(y))
    smooth = value(build("smooth_l1", beta=1.7, reduction="none"), t(x), t(y))
    check(huber, 1.7 * smooth)


def test_log_cosh_large_residual_is_finite_and_linear():
    # log cosh(d) = |d| - log 2 + log(1 + e^{-2|d|}); at |d| = 200 the last term is below float64 precision.
    out = value(build("log_cosh", reduction="none"), t([200.0, -300.0]), t([0.0, 0.0]))
    check(out, [200.0 - math.log(2.0), 300.0 - math.log(2.0)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_quantile_three_levels(reduction):
    g = rng(3)
    levels = [0.1, 0.5, 0.9]
    pred, y = g.normal(size=(5, 3)), g.normal(size=5)
    expected = ref.reduce(ref.pinball(pred, y, levels), reduction)  # 'mean' divides by N x Q = 15
    check(value(build("quantile", quantiles=levels, reduction=reduction), t(pred), t(y)), expected)


def test_quantile_by_hand():
    # e = y - yhat = [1, -2]; q = 0.25: [0.25 * 1, (0.25 - 1) * -2] = [0.25, 1.5]; q = 0.75: [0.75, 0.5].
    out = value(
        build("quantile", quantiles=[0.25, 0.75], reduction="none"),
        t([[0.0, 0.0], [3.0, 3.0]]),
        t([1.0, 1.0]),
    )
    check(out, [[0.25, 0.75], [1.5, 0.5]])


def test_quantile_single_level_same_shape_is_half_l1():
    g = rng(4)
    pred, y = g.normal(size=6), g.normal(size=6)
    check(value(build("quantile", quantiles=[0.5]), t(pred), t(y)), 0.5 * np.abs(y - pred).mean())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll(full, reduction):
    g = rng(5)
    mean, log_var, y = g.normal(size=(3, 2)), g.normal(size=(3, 2)), g.normal(size=(3, 2))
    log_var[0, 0] = -8.0  # below log(eps) = log(1e-3): the variance is clamped to eps
    x = np.stack([mean, log_var], axis=-1)
    expected = ref.reduce(ref.gaussian_nll(mean, log_var, y, eps=1e-3, full=full), reduction)
    check(value(build("gaussian_nll", full=full, eps=1e-3, reduction=reduction), t(x), t(y)), expected)


def test_gaussian_nll_by_hand():
    # mu = 1, s = log 4, y = 3: 0.5 (log 4 + 4 / 4) = 0.5 log 4 + 0.5
    out = value(build("gaussian_nll"), t([[1.0, math.log(4.0)]]), t([3.0]))
    check(out, 0.5 * math.log(4.0) + 0.5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.5, 0.8])
def test_beta_nll(beta, reduction):
    g = rng(6)
    mean, log_var, y = g.normal(size=(4, 2)), g.normal(size=(4, 2)), g.normal(size=(4, 2))
    x = np.stack([mean, log_var], axis=-1)
    expected = ref.reduce(ref.beta_nll(mean, log_var, y, beta, full=True), reduction)
    check(value(build("beta_nll", beta=beta, full=True, reduction=reduction), t(x), t(y)), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("log_input", "full"), [(True, False), (True, True), (False, False), (False, True)])
def test_poisson_nll(log_input, full, reduction):
    g = rng(7)
    y = g.poisson(3.0, size=(3, 4)).astype(np.float64)
    y[0, :3] = [0.0, 1.0, 2.0]  # the Stirling term is added only where y > 1
    x = g.normal(size=(3, 4)) if log_input else g.uniform(0.1, 4.0, size=(3, 4))
    expected = ref.reduce(ref.poisson_nll(x, y, log_input, full, eps=1e-4), reduction)
    loss = build("poisson_nll", log_input=log_input, full=full, eps=1e-4, reduction=reduction)
    check(value(loss, t(x), t(y)), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("power", [1.5, 1.2])
def test_tweedie(power, reduction):
    g = rng(8)
    eta = g.normal(size=(3, 4))
    y = np.where(g.uniform(size=(3, 4)) < 0.3, 0.0, g.gamma(2.0, 1.5, size=(3, 4)))  # exact zeros included
    expected = ref.reduce(ref.tweedie(eta, y, power), reduction)
    check(value(build("tweedie", power=power, reduction=reduction), t(eta), t(y)), expected)


def test_tweedie_by_hand():
    # eta = 0 (mu = 1), y = 2, p = 1.5: -2 / (-0.5) + 1 / 0.5 = 4 + 2 = 6
    check(value(build("tweedie", power=1.5), t([0.0]), t([2.0])), 6.0)


# ----------------------------------------------------------------------------------------------- distribution


@pytest.mark.parametrize(
    ("input_format", "log_target", "reduction"),
    [("log_probs", False, "batchmean"), ("log_probs", False, "mean"), ("log_probs", False, "sum"),
     ("log_probs", False, "none"), ("logits", False, "batchmean"), ("logits", True, "batchmean")],
)  # fmt: skip
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
def test_kl_div(input_format, log_target, reduction):
    g = rng(9)
    z = g.normal(size=(3, 4))
    target = ref.softmax(g.normal(size=(3, 4)), axis=1)
    if not log_target:
        target[0] = [0.0, 0.5, 0.5, 0.0]  # zero target entries contribute 0
    log_q = ref.log_softmax(z, axis=1)
    x = z if input_format == "logits" else log_q
    y = np.log(target) if log_target else target
    pointwise = ref.kl_div(log_q, target)
    expected = {
        "batchmean": pointwise.sum() / 3,
        "mean": pointwise.sum() / 12,
        "sum": pointwise.sum(),
        "none": pointwise,
    }[reduction]
    loss = build("kl_div", input_format=input_format, log_target=log_target, reduction=reduction)
    check(value(loss, t(x), t(y)), expected)


def test_kl_div_log_target_zero_probability_contributes_zero():
    log_q = np.log([[0.25, 0.25, 0.5]])
    target = np.array([[0.5, 0.5, 0.0]])
    with np.errstate(divide="ignore"):
        log_t = np.log(target)
    expected = 0.5 * math.log(2.0) + 0.5 * math.log(2.0)  # sum_k t_k log(t_k / q_k) over t_k > 0
    check(value(build("kl_div", log_target=True), t(log_q), t(log_t)), expected)


def test_kl_div_batchmean_is_true_kl_by_hand():
    # KL([0.5, 0.5] || [0.25, 0.75]) = 0.5 log 2 + 0.5 log(2/3)
    log_q = np.log([[0.25, 0.75]])
    check(value(build("kl_div"), t(log_q), t([[0.5, 0.5]])), 0.5 * math.log(2) + 0.5 * math.log(2 / 3))


# -------------------------------------------------------------------------------------------- classification


def _logits_and_targets(seed, n=6, c=4, ignore=()):
    g = rng(seed)
    z = g.normal(size=(n, c)) * 1.5
    y = g.integers(0, c, size=n)
    y[:c] = np.arange(c)  # every class present
    for i in ignore:
        y[i] = -1
    return z, y


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("weight", "smoothing"),
    [(None, 0.0), ([0.5, 2.0, 1.0, 3.0], 0.0), (None, 0.2), ([0.5, 2.0, 1.0, 3.0], 0.15)],
)
def test_cross_entropy(weight, smoothing, reduction):
    z, y = _logits_and_targets(10, ignore=(4,))
    expected = ref.cross_entropy(z, y, weight, -1, smoothing, reduction)
    params = {"ignore_index": -1, "label_smoothing": smoothing, "reduction": reduction}
    if weight is not None:
        params["weight"] = weight
    check(value(build("cross_entropy", **params), t(z), idx(y)), expected)


def test_weighted_cross_entropy_mean_divides_by_sum_of_target_weights():
    z = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0], [0.0, 3.0, 0.0]])
    y = np.array([0, 2, 1])
    w = np.array([2.0, 0.5, 4.0])
    nll = -ref.log_softmax(z)[np.arange(3), y]
    expected = (w[y] * nll).sum() / (2.0 + 4.0 + 0.5)  # not / 3
    check(value(build("cross_entropy", weight=list(w)), t(z), idx(y)), expected)


def test_cross_entropy_every_target_ignored_mean_is_zero():
    z, _ = _logits_and_targets(11)
    out = value(build("cross_entropy", ignore_index=-100), t(z), idx(np.full(6, -100)))
    check(out, 0.0)
    out = value(build("cross_entropy", weight=[1.0, 2.0, 3.0, 4.0], ignore_index=7), t(z), idx(np.full(6, 7)))
    check(out, 0.0)


def test_cross_entropy_spatial_class_dim_1():
    g = rng(12)
    z = g.normal(size=(2, 3, 2, 2))
    y = g.integers(0, 3, size=(2, 2, 2))
    y[1, 0, 1] = -100
    expected = ref.cross_entropy(z, y, [1.0, 2.0, 0.5], -100, 0.1, "none")
    check(value(build("cross_entropy", weight=[1.0, 2.0, 0.5], label_smoothing=0.1, reduction="none"), t(z), idx(y)),
          expected)  # fmt: skip


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll(reduction):
    z, y = _logits_and_targets(13, ignore=(2,))
    log_p = ref.log_softmax(z)
    w = np.array([1.0, 3.0, 0.5, 2.0])
    per = np.array([0.0 if yi == -1 else -w[yi] * log_p[i, yi] for i, yi in enumerate(y)])
    expected = ref.reduce(per, reduction, sum(w[yi] for yi in y if yi != -1))
    check(
        value(build("nll", weight=list(w), ignore_index=-1, reduction=reduction), t(log_p), idx(y)), expected
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weights_pos_weight_and_ignore(reduction):
    g = rng(14)
    x = g.normal(size=(4, 3)) * 2
    y = (g.uniform(size=(4, 3)) < 0.4).astype(np.float64)
    y[1, 2] = -1.0
    w, pw = np.array([1.0, 0.5, 2.0]), np.array([3.0, 1.0, 0.25])
    per = np.where(y == -1, 0.0, ref.bce(x, np.where(y == -1, 0, y), w, pw))
    expected = ref.reduce(per, reduction, (y != -1).sum())
    loss = build("bce", weight=list(w), pos_weight=list(pw), ignore_index=-1, reduction=reduction)
    check(value(loss, t(x), t(y)), expected)


def test_bce_soft_targets():
    g = rng(15)
    x, y = g.normal(size=(3, 2)), g.uniform(size=(3, 2))
    check(value(build("bce"), t(x), t(y)), ref.bce(x, y).mean())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("mean_over", ["samples", "elements"])
def test_focal_per_class_alpha(mean_over, reduction):
    z, y = _logits_and_targets(16, n=7, ignore=(5,))
    alpha = [0.25, 0.75, 0.5, 1.5]
    expected = ref.focal(z, y, 1.5, alpha, -1, mean_over, reduction)
    loss = build("focal", gamma=1.5, alpha=alpha, ignore_index=-1, mean_over=mean_over, reduction=reduction)
    check(value(loss, t(z), idx(y)), expected)


def test_focal_by_hand():
    # two classes, p_y = 0.8 (logits [0, log 4]): -(0.2)^2 log 0.8 with alpha_1 = 0.6
    out = value(build("focal", gamma=2.0, alpha=[0.4, 0.6]), t([[0.0, math.log(4.0)]]), idx([1]))
    check(out, -0.6 * 0.2**2 * math.log(0.8))


def test_focal_gamma_zero_is_cross_entropy():
    z, y = _logits_and_targets(17)
    check(value(build("focal", gamma=0.0), t(z), idx(y)), ref.cross_entropy(z, y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (0.5, 0.8), (1.0, None)])
def test_binary_focal(gamma, alpha, reduction):
    g = rng(18)
    x = g.normal(size=(4, 3)) * 2
    y = (g.uniform(size=(4, 3)) < 0.5).astype(np.float64)
    y[0, 0] = 255.0
    per = np.where(y == 255, 0.0, ref.binary_focal(x, y, gamma, alpha))
    expected = ref.reduce(per, reduction, (y != 255).sum())
    loss = build("binary_focal", gamma=gamma, alpha=alpha, ignore_index=255, reduction=reduction)
    check(value(loss, t(x), t(y)), expected)


def test_binary_focal_by_hand():
    # x = log 3 (p = 0.75), y = 1: -0.25 * 0.25^2 * log 0.75; y = 0: -0.75 * 0.75^2 * log 0.25
    out = value(build("binary_focal", reduction="none"), t([math.log(3.0), math.log(3.0)]), t([1.0, 0.0]))
    check(out, [-0.25 * 0.0625 * math.log(0.75), -0.75 * 0.5625 * math.log(0.25)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("gamma_neg", "gamma_pos", "clip"), [(4.0, 1.0, 0.05), (2.0, 0.0, 0.2), (3.0, 1.0, 0.0)]
)
def test_asl(gamma_neg, gamma_pos, clip, reduction):
    g = rng(19)
    x = g.normal(size=(4, 5)) * 2
    x[0, :2] = [-4.0, -3.0]  # sigmoid(x) < 0.05: with clip these negatives contribute exactly 0
    y = (g.uniform(size=(4, 5)) < 0.3).astype(np.float64)
    y[0, :2] = 0.0
    y[2, 3] = -1.0
    per = np.where(y == -1, 0.0, ref.asl(x, np.where(y == -1, 0, y), gamma_neg, gamma_pos, clip))
    expected = ref.reduce(per, reduction, (y != -1).sum())
    loss = build(
        "asl", gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip, ignore_index=-1, reduction=reduction
    )
    out = value(loss, t(x), t(y))
    check(out, expected)
    if clip > 0 and reduction == "none":
        check(out[0, :2], [0.0, 0.0])


def test_asl_by_hand():
    # p = 0.5 (x = 0), clip 0.1: negative p_m = 0.4 -> -(0.4^2) log 0.6; positive -(0.5) log 0.5 (gamma_pos 1)
    out = value(
        build("asl", gamma_neg=2.0, gamma_pos=1.0, clip=0.1, reduction="none"), t([0.0, 0.0]), t([0.0, 1.0])
    )
    check(out, [-0.16 * math.log(0.6), -0.5 * math.log(0.5)])


def test_class_balanced_weights_formula():
    counts, beta = [500, 50, 5, 0], 0.99
    n = np.array([500.0, 50.0, 5.0, 1.0])  # a zero count counts as one sample
    raw = (1 - beta) / (1 - beta**n)
    w = raw / raw.sum() * 4
    assert_allclose(w.sum(), 4.0, rtol=RTOL)
    assert_allclose(ref.class_balanced_weights(counts, beta), w, rtol=RTOL)
    # gamma = 0, softmax: w_y * CE, mean over the number of valid targets
    z, y = _logits_and_targets(20, ignore=(1,))
    nll = -ref.log_softmax(z)
    per = np.array([0.0 if yi == -1 else w[yi] * nll[i, yi] for i, yi in enumerate(y)])
    out = value(build("class_balanced", samples_per_class=counts, beta=beta, ignore_index=-1), t(z), idx(y))
    check(out, per.sum() / 5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_class_balanced_focal(activation, reduction):
    counts, beta, gamma = [300, 40, 7, 2], 0.999, 1.5
    w = ref.class_balanced_weights(counts, beta)
    z, y = _logits_and_targets(21, n=7, ignore=(6,))
    valid = y != -1
    safe = np.where(valid, y, 0)
    if activation == "softmax":
        per = w[safe] * ref.focal(z, safe, gamma, reduction="none")
    else:
        one_hot = (np.arange(4)[None, :] == safe[:, None]).astype(np.float64)
        per = w[safe] * ref.binary_focal(z, one_hot, gamma, None).sum(axis=1)
    per = np.where(valid, per, 0.0)
    expected = ref.reduce(per, reduction, valid.sum())
    loss = build("class_balanced", samples_per_class=counts, beta=beta, gamma=gamma, activation=activation,
                 ignore_index=-1, reduction=reduction)  # fmt: skip
    check(value(loss, t(z), idx(y)), expected)


def _ldam_expected(z, y, counts, max_margin, s, weight=None, ignore_index=-100, reduction="mean"):
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    m = n**-0.25
    m = m * max_margin / m.max()
    shifted = z.copy()
    for i, yi in enumerate(y):
        if yi != ignore_index:
            shifted[i, yi] -= m[yi]
    return ref.cross_entropy(s * shifted, y, weight, ignore_index, 0.0, reduction)


def test_ldam_margins_by_hand():
    # counts [16, 1]: m ~ [16^-1/4, 1] = [0.5, 1] -> scaled to max 0.5: [0.25, 0.5]; s = 2
    z = np.array([[1.0, 0.0], [0.3, 0.8]])
    y = np.array([0, 1])
    shifted = 2.0 * np.array([[1.0 - 0.25, 0.0], [0.3, 0.8 - 0.5]])
    expected = -ref.log_softmax(shifted)[np.arange(2), y].mean()
    check(value(build("ldam", samples_per_class=[16, 1], scale=2.0), t(z), idx(y)), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, [0.5, 1.0, 2.0, 4.0]])
def test_ldam(weight, reduction):
    counts = [1000, 200, 30, 0]
    z, y = _logits_and_targets(22, n=7, ignore=(5,))
    expected = _ldam_expected(z, y, counts, 0.4, 5.0, weight, -1, reduction)
    params = {
        "samples_per_class": counts,
        "max_margin": 0.4,
        "scale": 5.0,
        "ignore_index": -1,
        "reduction": reduction,
    }
    if weight is not None:
        params["weight"] = weight
    check(value(build("ldam", **params), t(z), idx(y)), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("tau", [1.0, 0.6])
def test_logit_adjusted(tau, reduction):
    counts = [800, 150, 40, 10]
    prior = np.array(counts, dtype=np.float64) / sum(counts)
    z, y = _logits_and_targets(23, ignore=(3,))
    expected = ref.cross_entropy(z + tau * np.log(prior), y, None, -1, 0.0, reduction)
    loss = build("logit_adjusted", samples_per_class=counts, tau=tau, ignore_index=-1, reduction=reduction)
    check(value(loss, t(z), idx(y)), expected)


def test_logit_adjusted_zero_count_is_one_sample():
    counts = [9, 0]
    z, y = np.array([[0.2, 0.1], [1.0, -1.0]]), np.array([1, 0])
    prior = np.array([9.0, 1.0]) / 10.0
    expected = ref.cross_entropy(z + np.log(prior), y)
    check(value(build("logit_adjusted", samples_per_class=counts), t(z), idx(y)), expected)


def _per_target_case(formula, name, params, reduction, seed):
    z, y = _logits_and_targets(seed, n=7, ignore=(2,))
    valid = y != -1
    per = np.where(valid, formula(z, np.where(valid, y, 0)), 0.0)
    expected = ref.reduce(per, reduction, valid.sum())
    check(value(build(name, ignore_index=-1, reduction=reduction, **params), t(z), idx(y)), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("epsilon", [1.0, 2.5, -0.5])
def test_poly1(epsilon, reduction):
    _per_target_case(lambda z, y: ref.poly1(z, y, epsilon), "poly1", {"epsilon": epsilon}, reduction, 24)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("q", [0.7, 0.3, 1.0])
def test_gce(q, reduction):
    _per_target_case(lambda z, y: ref.gce(z, y, q), "gce", {"q": q}, reduction, 25)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("alpha", "beta", "log_zero"), [(0.1, 1.0, -4.0), (0.5, 2.0, -6.0)])
def test_sce(alpha, beta, log_zero, reduction):
    params = {"alpha": alpha, "beta": beta, "log_zero": log_zero}
    _per_target_case(lambda z, y: ref.sce(z, y, alpha, beta, log_zero), "sce", params, reduction, 26)


def test_gce_q1_is_mae_and_sce_by_hand():
    z = np.array([[math.log(3.0), 0.0]])  # p = [0.75, 0.25], y = 0
    check(value(build("gce", q=1.0), t(z), idx([0])), 0.25)
    # SCE: alpha (-log 0.75) + beta (-A) (0.25) with A = -4
    check(value(build("sce", alpha=0.1, beta=1.0), t(z), idx([0])), -0.1 * math.log(0.75) + 4 * 0.25)


# ---------------------------------------------------------------------------------------------- segmentation


def _seg_case(seed, n=2, c=3, shape=(2, 3), ignore=None, absent=None):
    g = rng(seed)
    z = g.normal(size=(n, c, *shape)) * 1.5
    y = g.integers(0, c, size=(n, *shape))
    if absent is not None:
        y[y == absent] = (absent + 1) % c
    if ignore is not None:
        y[0, 0, 0] = ignore
    return z, y


def _overlap_expected(name, z, y, params):
    p, g = ref.seg_arrays(z, y, params.get("activation", "softmax"), params.get("ignore_index"))
    tp, sp, sg = ref.overlap(p, g, params.get("batch", False), params.get("include_background", True),
                             params.get("squared_pred", False))  # fmt: skip
    snr, sdr = params.get("smooth_nr", 1e-5), params.get("smooth_dr", 1e-5)
    fp, fn = sp - tp, sg - tp
    if name == "dice":
        values = 1 - (2 * tp + snr) / (sp + sg + sdr)
    elif name == "jaccard":
        values = 1 - (tp + snr) / (sp + sg - tp + sdr)
    else:
        a, b = params.get("fp_weight", 0.3), params.get("fn_weight", 0.7)
        values = 1 - (tp + snr) / (tp + a * fp + b * fn + sdr)
        if name == "focal_tversky":
            values = values ** params.get("gamma", 0.75)
    weight = params.get("weight")
    if weight is not None and not params.get("include_background", True):
        weight = weight[1:]  # one weight per input channel; the background's is unused when it is not scored
    return ref.reduce_classes(
        values, sg, params.get("empty", "smooth"), params.get("reduction", "mean"), weight
    )


OVERLAP_CASES = [
    {},
    {"batch": True},
    {"include_background": False},
    {"batch": True, "include_background": False, "reduction": "none"},
    {"reduction": "none", "ignore_index": 255},
    {"reduction": "sum", "smooth_nr": 0.5, "smooth_dr": 1.0},
    {"activation": "sigmoid", "reduction": "none"},
    {"empty": "skip", "reduction": "none", "smooth_nr": 0.0, "smooth_dr": 0.1},
    {"empty": "skip", "smooth_nr": 0.0, "smooth_dr": 0.1},
    {"empty": "smooth", "smooth_nr": 0.3, "smooth_dr": 0.3, "reduction": "none"},
]


@pytest.mark.parametrize(
    "params", [*OVERLAP_CASES, {"squared_pred": True}, {"squared_pred": True, "batch": True}]
)
@pytest.mark.parametrize("name", ["dice", "jaccard"])
def test_dice_and_jaccard(name, params):
    absent = 2 if "empty" in params else None
    z, y = _seg_case(30, ignore=params.get("ignore_index"), absent=absent)
    check(value(build(name, **params), t(z), idx(y)), _overlap_expected(name, z, y, params))


TVERSKY_WEIGHTS = [{"fp_weight": 0.2, "fn_weight": 0.8}, {"fp_weight": 0.9, "fn_weight": 0.1}]


@pytest.mark.parametrize("weights", TVERSKY_WEIGHTS)
@pytest.mark.parametrize("params", OVERLAP_CASES)
@pytest.mark.parametrize(("name", "extra"), [("tversky", {}), ("focal_tversky", {"gamma": 0.75}),
                                             ("focal_tversky", {"gamma": 1.5})])  # fmt: skip
def test_tversky_and_focal_tversky(name, extra, params, weights):
    params = {**params, **weights, **extra}
    absent = 2 if "empty" in params else None
    z, y = _seg_case(31, ignore=params.get("ignore_index"), absent=absent)
    check(value(build(name, **params), t(z), idx(y)), _overlap_expected(name, z, y, params))


def test_tversky_fp_weight_weights_false_positives_by_hand():
    # probabilities (activation none), one sample, 1 channel, 4 pixels: p = [1, 1, 0, 0], g = [1, 0, 1, 1]
    # TP = 1, FP = 1, FN = 2; a = 0.2 (FP), b = 0.8 (FN): TI = 1 / (1 + 0.2 + 1.6)
    p = np.array([[[1.0, 1.0, 0.0, 0.0]]])
    g = np.array([[[1.0, 0.0, 1.0, 1.0]]])
    params = {"activation": "none", "fp_weight": 0.2, "fn_weight": 0.8, "smooth_nr": 0.0, "smooth_dr": 0.0}
    check(value(build("tversky", **params), t(p), t(g)), 1 - 1 / 2.8)
    check(value(build("focal_tversky", gamma=0.5, **params), t(p), t(g)), (1 - 1 / 2.8) ** 0.5)


def test_dice_soft_targets_and_probability_input():
    g = rng(32)
    p = ref.softmax(g.normal(size=(2, 3, 5)), axis=1)
    target = ref.softmax(g.normal(size=(2, 3, 5)) * 3, axis=1)
    params = {"activation": "none", "reduction": "none", "smooth_nr": 0.1, "smooth_dr": 0.2}
    tp, sp, sg = (p * target).sum(2), p.sum(2), target.sum(2)
    check(value(build("dice", **params), t(p), t(target)), 1 - (2 * tp + 0.1) / (sp + sg + 0.2))


def test_dice_by_hand():
    # p = [0.9, 0.2, 0.6], g = [1, 0, 1]: 1 - 2 * 1.5 / (1.7 + 2) with no smoothing
    p, g = np.array([[[0.9, 0.2, 0.6]]]), np.array([[[1.0, 0.0, 1.0]]])
    out = value(build("dice", activation="none", smooth_nr=0.0, smooth_dr=0.0), t(p), t(g))
    check(out, 1 - 3.0 / 3.7)


def _dice_ce_expected(z, y, params):
    activation = params.get("activation", "softmax")
    dice_params = {k: v for k, v in params.items() if k not in ("lambda_dice", "lambda_ce", "ce_weight")}
    dice = _overlap_expected("dice", z, y, dice_params)
    weight = params.get("ce_weight")
    ignore = params.get("ignore_index")
    reduction = params.get("reduction", "mean")  # applies to both terms
    if activation == "softmax":  # index targets: torch's CE, mean over the sum of the targets' weights
        ce = ref.cross_entropy(z, y, weight, -100 if ignore is None else ignore, 0.0, reduction)
    else:  # sigmoid: BCE per channel against the one-hot/0-1 target, mean over counted pixels x C
        p, g = ref.seg_arrays(z, y, "none", ignore)
        keep = (
            np.ones(g.shape[::2], bool) if ignore is None else np.asarray(y).reshape(z.shape[0], -1) != ignore
        )
        w = np.ones(z.shape[1]) if weight is None else np.asarray(weight)
        per = ref.bce(p, g) * w[None, :, None] * keep[:, None, :]
        ce = ref.reduce(per, reduction, keep.sum() * z.shape[1])
    return params.get("lambda_dice", 1.0) * dice + params.get("lambda_ce", 1.0) * ce


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"batch": True, "include_background": False},
        {"lambda_dice": 0.7, "lambda_ce": 1.6, "ce_weight": [0.2, 1.0, 3.0], "ignore_index": 255},
        {"include_background": False, "reduction": "sum", "ce_weight": [0.5, 1.0, 2.0]},
        {"activation": "sigmoid", "ce_weight": [0.5, 2.0, 1.0], "reduction": "sum", "batch": True},
        {"reduction": "sum", "smooth_nr": 0.5, "smooth_dr": 0.5},
        {"activation": "sigmoid", "ce_weight": [0.5, 2.0, 1.0]},
        {"activation": "sigmoid", "ignore_index": 255, "batch": True},
    ],
)
def test_dice_ce(params):
    z, y = _seg_case(33, ignore=params.get("ignore_index"))
    check(value(build("dice_ce", **params), t(z), idx(y)), _dice_ce_expected(z, y, params))


# Per-class weights of the Dice family (MONAI #7065): 'mean' = sum w_c k L / sum w_c k over counted values.
CLASS_WEIGHTS = [[0.2, 1.0, 3.0], [0.0, 2.0, 0.5]]
WEIGHTED_CASES = [
    {},
    {"batch": True},
    {"include_background": False},
    {"reduction": "sum"},
    {"reduction": "none", "ignore_index": 255},
    {"empty": "skip", "smooth_nr": 0.0, "smooth_dr": 0.1},
    {"activation": "sigmoid", "batch": True},
]


@pytest.mark.parametrize("weight", CLASS_WEIGHTS)
@pytest.mark.parametrize("params", WEIGHTED_CASES)
@pytest.mark.parametrize(("name", "extra"), [("dice", {}), ("jaccard", {}), ("tversky", {}),
                                             ("focal_tversky", {"gamma": 0.75})])  # fmt: skip
def test_overlap_losses_with_class_weights(name, extra, params, weight):
    params = {**params, **extra, "weight": weight}
    absent = 2 if "empty" in params else None
    z, y = _seg_case(37, ignore=params.get("ignore_index"), absent=absent)
    expected = _overlap_expected(name, z, y, params)
    check(value(build(name, **params), t(z), idx(y)), expected)
    if params.get("reduction", "mean") == "mean":  # the weights change the value (they are not ignored)
        unweighted = _overlap_expected(name, z, y, {k: v for k, v in params.items() if k != "weight"})
        assert abs(float(expected) - float(unweighted)) > 1e-6


def test_dice_class_weights_by_hand():
    # probabilities (activation none), one sample, 2 channels, 2 pixels; pixel 0 is class 0, pixel 1 class 1.
    # p0 = [0.8, 0.3], p1 = [0.2, 0.7]: Dice_0 = 1.6 / 2.1, Dice_1 = 1.4 / 1.9 (no smoothing), so
    # L_0 = 0.5 / 2.1, L_1 = 0.5 / 1.9; w = [1, 3]: (L_0 + 3 L_1) / 4.
    p = np.array([[[0.8, 0.3], [0.2, 0.7]]])
    g = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    params = {"activation": "none", "smooth_nr": 0.0, "smooth_dr": 0.0}
    l0, l1 = 0.5 / 2.1, 0.5 / 1.9
    check(value(build("dice", weight=[1.0, 3.0], **params), t(p), t(g)), (l0 + 3 * l1) / 4)
    check(value(build("dice", weight=[1.0, 3.0], reduction="sum", **params), t(p), t(g)), l0 + 3 * l1)
    check(value(build("dice", weight=[1.0, 3.0], reduction="none", **params), t(p), t(g)), [[l0, 3 * l1]])
    # Without the background, channel 0's weight is unused: the mean is L_1 whatever w_0 is.
    check(value(build("dice", weight=[9.0, 3.0], include_background=False, **params), t(p), t(g)), l1)
    # Every weight 0: nothing counts and the mean is 0, not NaN.
    check(value(build("dice", weight=[0.0, 0.0], **params), t(p), t(g)), 0.0)


@pytest.mark.parametrize("params", [{}, {"batch": True, "include_background": False}, {"reduction": "sum"}])
def test_dice_ce_dice_weight(params):
    z, y = _seg_case(38)
    dice_weight, ce_weight = [0.5, 1.0, 4.0], [1.0, 0.5, 2.0]
    loss = build("dice_ce", dice_weight=dice_weight, ce_weight=ce_weight, lambda_ce=0.7, **params)
    dice = _overlap_expected("dice", z, y, {**params, "weight": dice_weight})
    ce = ref.cross_entropy(z, y, ce_weight, -100, 0.0, params.get("reduction", "mean"))
    check(value(loss, t(z), idx(y)), dice + 0.7 * ce)


@pytest.mark.parametrize(("name", "param"), [("dice", "weight"), ("tversky", "weight"),
                                             ("focal_tversky", "weight"), ("jaccard", "weight"),
                                             ("dice_ce", "dice_weight")])  # fmt: skip
def test_class_weights_must_match_the_channel_count(name, param):
    z, y = _seg_case(39)
    with pytest.raises(advisor.LossInputError) as caught:
        build(name, **{param: [1.0, 2.0]})(t(z), idx(y))
    assert caught.value.violations[0].field == f"params.{param}"
    assert "2 entries" in str(caught.value) and "3 classes" in str(caught.value)
    with pytest.raises(advisor.SpecError) as invalid:
        build(name, **{param: [1.0, -1.0, 1.0]})
    assert invalid.value.violations[0].field == f"params.{param}.1"


def test_dice_ce_soft_target_softmax_without_weights():
    g = rng(34)
    z = g.normal(size=(2, 3, 4))
    target = ref.softmax(g.normal(size=(2, 3, 4)) * 2, axis=1)
    p = ref.softmax(z, axis=1)
    tp, sp, sg = (p * target).sum(2), p.sum(2), target.sum(2)
    dice = (1 - (2 * tp + 1e-5) / (sp + sg + 1e-5)).mean()
    ce = -(target * ref.log_softmax(z, axis=1)).sum(1).mean()  # soft-label CE, mean over pixels
    check(value(build("dice_ce"), t(z), t(target)), dice + ce)


def test_dice_ce_weighted_same_value_for_index_and_one_hot_targets():
    z, y = _seg_case(35)
    one_hot = np.moveaxis(np.eye(3)[y], -1, 1)
    loss = build("dice_ce", ce_weight=[0.2, 1.0, 3.0])
    check(value(loss, t(z), t(one_hot)), value(loss, t(z), idx(y)))


def test_lovasz_softmax_by_hand():
    # 3 pixels, 2 classes, p(class 1) = [0.9, 0.4, 0.2], labels [1, 1, 0].
    # class 1: errors [0.1, 0.6, 0.2], |fg| = 2; sorted: px2 (fg), px3 (bg), px1 (fg);
    #   Jaccard loss of prefixes |M| / |fg u M| = 1/2, 2/3, 3/3 -> increments 1/2, 1/6, 1/3
    #   -> 0.6/2 + 0.2/6 + 0.1/3 = 11/30
    # class 0: errors [0.1, 0.6, 0.2], |fg| = 1 (px3); sorted: px2 (bg), px3 (fg), px1 (bg);
    #   prefixes 1/2, 2/2, 3/3 -> increments 1/2, 1/2, 0 -> 0.3 + 0.1 = 0.4 = 12/30
    # mean over the two present classes: 23/60
    p1 = np.array([0.9, 0.4, 0.2])
    z = np.log(np.stack([1 - p1, p1]))[None, :, :, None]  # (1, 2, 3, 1) logits whose softmax is p
    y = np.array([[[1], [1], [0]]])
    check(value(build("lovasz"), t(z), idx(y)), 23 / 60)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"classes": "all"},
        {"per_image": True},
        {"per_image": True, "reduction": "none"},
        {"per_image": True, "reduction": "sum", "classes": "all"},
        {"ignore_index": 255},
    ],
)
def test_lovasz_softmax(params):
    z, y = _seg_case(36, n=2, c=4, shape=(3, 3), ignore=params.get("ignore_index"), absent=3)
    probs = ref.softmax(z, axis=1)
    images = range(2) if params.get("per_image") else [None]
    values = []
    for i in images:
        p = np.moveaxis(probs if i is None else probs[i : i + 1], 1, -1).reshape(-1, 4)
        lab = (y if i is None else y[i : i + 1]).reshape(-1)
        keep = lab != params.get("ignore_index", -12345)
        values.append(ref.lovasz_softmax(p[keep], lab[keep], params.get("classes", "present")))
    reduction = params.get("reduction", "mean")
    expected = values[0] if not params.get("per_image") else ref.reduce(values, reduction)
    check(value(build("lovasz", **params), t(z), idx(y)), expected)


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_hinge(per_image):
    g = rng(37)
    z = g.normal(size=(2, 1, 3, 3)) * 2
    y = g.integers(0, 2, size=(2, 3, 3))
    if per_image:
        expected = np.mean([ref.lovasz_hinge(z[i, 0].reshape(-1), y[i].reshape(-1)) for i in range(2)])
    else:
        expected = ref.lovasz_hinge(z[:, 0].reshape(-1), y.reshape(-1))
    check(value(build("lovasz", variant="hinge", per_image=per_image), t(z), idx(y)), expected)


# ---------------------------------------------------------------------------------------------------- audio


def _waves(seed, shape=(2, 2, 64)):
    g = rng(seed)
    y = g.normal(size=shape) + 0.3
    x = 0.8 * y + 0.4 * g.normal(size=shape) - 0.1
    return x, y


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_esr(eps, reduction):
    x, y = _waves(40)
    check(
        value(build("esr", eps=eps, reduction=reduction), t(x), t(y)),
        ref.reduce(ref.esr(x, y, eps), reduction),
    )


def test_esr_by_hand():
    # y = [1, 2], x = [1, 1]: 1 / (5 + 0) (tiny eps)
    check(value(build("esr", eps=1e-300), t([[[1.0, 1.0]]]), t([[[1.0, 2.0]]])), 0.2)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_mean", [True, False])
@pytest.mark.parametrize(("name", "formula"), [("snr", ref.snr), ("si_sdr", ref.si_sdr)])
def test_snr_and_si_sdr(name, formula, zero_mean, reduction):
    x, y = _waves(41)
    expected = ref.reduce(formula(x, y, zero_mean, 1e-3), reduction)
    check(value(build(name, zero_mean=zero_mean, eps=1e-3, reduction=reduction), t(x), t(y)), expected)


def test_si_sdr_by_hand_is_gain_invariant():
    # y = [1, -1], x = 2y + [0.1, 0.1] without zero-mean: a = <x, y>/||y||^2 = 2, target part 2y,
    # residual [-0.1, -0.1]: SI-SDR = 10 log10(8 / 0.02)
    y = np.array([[[1.0, -1.0]]])
    x = 2 * y + 0.1
    out = value(build("si_sdr", zero_mean=False, eps=1e-300), t(x), t(y))
    check(out, -10 * math.log10(8 / 0.02))
    check(
        value(build("snr", zero_mean=False, eps=1e-300), t(x), t(y)), -10 * math.log10(2 / (1.1**2 + 0.9**2))
    )


# torch.stft's centre/reflect framing and window padding are reproduced with numpy's FFT in reference.py. The
# periodic Hann window auraloss builds is float32 (torch's default dtype), so the float64 value carries that
# window's rounding (about 1e-8 relative against the float64 window used here): 1e-6 relative tolerance.
STFT_RTOL = 1e-6


@pytest.mark.parametrize(
    "params",
    [
        {"fft_size": 64, "hop_size": 16, "win_length": 64},
        {"fft_size": 64, "hop_size": 12, "win_length": 40},
        {"fft_size": 32, "hop_size": 8, "win_length": 31, "w_sc": 0.5, "w_log_mag": 2.0, "w_lin_mag": 0.7},
        {
            "fft_size": 32,
            "hop_size": 8,
            "win_length": 32,
            "w_lin_mag": 1.0,
            "mag_distance": "L2",
            "eps": 1e-4,
        },
    ],
)
def test_stft(params):
    x, y = _waves(42, shape=(2, 2, 300))
    expected = ref.stft_loss(
        x, y, params["fft_size"], params["hop_size"], params["win_length"], params.get("eps", 1e-8),
        params.get("w_sc", 1.0), params.get("w_log_mag", 1.0), params.get("w_lin_mag", 0.0),
        params.get("mag_distance", "L1"),
    )  # fmt: skip
    check(value(build("stft", **params), t(x), t(y)), expected, rtol=STFT_RTOL)


def test_mr_stft():
    x, y = _waves(43, shape=(2, 1, 400))
    ffts, hops, wins = [64, 128, 32], [16, 32, 8], [48, 100, 32]
    expected = np.mean([ref.stft_loss(x, y, f, h, w) for f, h, w in zip(ffts, hops, wins, strict=True)])
    loss = build("mr_stft", fft_sizes=ffts, hop_sizes=hops, win_lengths=wins)
    check(value(loss, t(x), t(y)), expected, rtol=STFT_RTOL)


def test_stft_identical_signals_give_zero():
    x, _ = _waves(44, shape=(1, 1, 256))
    check(value(build("stft", fft_size=64, hop_size=16, win_length=64), t(x), t(x)), 0.0)


# ------------------------------------------------------------------------------------------------ multi_task


def _multi_task_case():
    g = rng(50)
    reg_x, reg_y = g.normal(size=(5, 2)), g.normal(size=(5, 2))
    z, y = _logits_and_targets(51)
    inputs = {"reg": t(reg_x), "cls": t(z)}
    targets = {"reg": t(reg_y), "cls": idx(y)}
    heads = {"reg": {"loss": "huber", "params": {"delta": 0.5}},
             "cls": {"loss": "cross_entropy", "params": {"weight": [1.0, 2.0, 0.5, 1.5], "label_smoothing": 0.1}}}  # fmt: skip
    losses = {"reg": ref.huber(reg_x, reg_y, 0.5).mean(),
              "cls": ref.cross_entropy(z, y, [1.0, 2.0, 0.5, 1.5], -100, 0.1, "mean")}  # fmt: skip
    return heads, inputs, targets, losses


def _multi_task_value(weighting):
    heads, inputs, targets, losses = _multi_task_case()
    loss = build("multi_task", heads=heads, weighting=weighting).double()  # learned weights in float64 too
    with torch.no_grad():
        return loss(inputs, targets).numpy(), losses


def _static_check(rtol):
    out, losses = _multi_task_value({"scheme": "static", "weights": {"reg": 2.0, "cls": 0.25}})
    check(out, 2.0 * losses["reg"] + 0.25 * losses["cls"], rtol=rtol)


def _uncertainty_check(rtol):
    s = -0.375  # exact in float32: parameters are created in the default dtype before .double()
    out, losses = _multi_task_value({"scheme": "uncertainty", "init_log_var": s})
    expected = sum(0.5 * math.exp(-s) * v + 0.5 * s for v in losses.values())
    check(out, expected, rtol=rtol)


def test_multi_task_static_weights_float32_precision():
    _static_check(rtol=1e-6)


def test_multi_task_uncertainty_weighting_float32_precision():
    _uncertainty_check(rtol=1e-6)


def test_multi_task_static_weights():
    _static_check(rtol=RTOL)


def test_multi_task_uncertainty_weighting():
    _uncertainty_check(rtol=RTOL)


def test_multi_task_default_weights_are_one():
    out, losses = _multi_task_value({"scheme": "static"})
    check(out, losses["reg"] + losses["cls"], rtol=1e-6)


def test_multi_task_dwa_weights_after_two_epochs():
    heads, inputs, targets, losses = _multi_task_case()
    loss = build("multi_task", heads=heads, weighting={"scheme": "dwa", "temperature": 2.0})
    names = list(heads)
    history = []
    with torch.no_grad():
        for scale in (1.0, 0.5):  # epoch means: L_k(t-2) at scale 1, L_k(t-1) with the inputs halved
            scaled = {k: (v * scale if k == "reg" else v / (2 - scale)) for k, v in inputs.items()}
            first = float(loss(scaled, targets))
            check(first, sum(float(loss.last_losses[i]) for i in range(2)), rtol=1e-6)  # weights 1 until then
            history.append(np.array([float(v) for v in loss.last_losses]))
            loss.end_epoch()
        out = float(loss(inputs, targets))
    rates = history[1] / history[0]
    w = 2 * np.exp(rates / 2.0) / np.exp(rates / 2.0).sum()
    check(out, sum(w[i] * losses[name] for i, name in enumerate(names)), rtol=1e-6)
