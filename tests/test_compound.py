"""The ``compound`` loss: a weighted sum of catalog losses on one output.

Expected values are float64 numpy derivations written here from the formulas (and ``tests/reference.py``),
never the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

import advisor
from advisor.losses import checks, registry
from advisor.losses._base import ReductionParams, TensorFormat
from tests import reference as ref

DICE_FOCAL = {
    "loss": "compound",
    "params": {
        "terms": [
            {"loss": "dice", "params": {"include_background": False, "batch": True}, "weight": 1.0},
            {"loss": "focal", "params": {"gamma": 2.0}, "weight": 0.5},
        ]
    },
}


def _value(loss, x, y):
    with torch.no_grad():
        out = loss(x, y)
    assert out.dtype == torch.float64
    return out.numpy()


def _seg(seed, n=2, c=3, shape=(3, 4)):
    g = np.random.default_rng(seed)
    return g.normal(size=(n, c, *shape)) * 1.5, g.integers(0, c, size=(n, *shape))


def _dice_by_hand(z, y, *, include_background=True, batch=False, smooth=1e-5, weight=None):
    """Soft Dice 1 - (2 sum p g + s) / (sum p + sum g + s) on softmax probabilities, mean over values."""
    n, c = z.shape[:2]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).reshape(n, c, -1)
    g = np.stack([(y.reshape(n, -1) == k) for k in range(c)], axis=1).astype(np.float64)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    if not include_background:
        p, g, w = p[:, 1:], g[:, 1:], w[1:]
    axes = (0, 2) if batch else (2,)
    values = 1 - (2 * (p * g).sum(axes) + smooth) / (p.sum(axes) + g.sum(axes) + smooth)
    return (values * w).sum() / (np.ones_like(values) * w).sum()


def _ce_by_hand(z, y):
    """Mean over pixels of -log softmax(z)_y."""
    c = z.shape[1]
    rows = np.moveaxis(z, 1, -1).reshape(-1, c)
    rows = rows - rows.max(axis=1, keepdims=True)
    log_p = rows - np.log(np.exp(rows).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(rows)), y.reshape(-1)].mean()


# ------------------------------------------------------------------------------------------------ values


def test_dice_plus_cross_entropy_is_the_weighted_sum_by_hand():
    z, y = _seg(1)
    spec = {
        "loss": "compound",
        "params": {"terms": [{"loss": "dice", "weight": 0.7}, {"loss": "cross_entropy", "weight": 1.3}]},
    }
    expected = 0.7 * _dice_by_hand(z, y) + 1.3 * _ce_by_hand(z, y)
    actual = _value(advisor.build_loss(spec), torch.tensor(z), torch.tensor(y))
    assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)
    # The same losses through dice_ce (lambda_dice 0.7, lambda_ce 1.3) agree: one formula, two spellings.
    dice_ce = advisor.build_loss({"loss": "dice_ce", "params": {"lambda_dice": 0.7, "lambda_ce": 1.3}})
    assert_allclose(_value(dice_ce, torch.tensor(z), torch.tensor(y)), expected, rtol=1e-10)


def test_dice_plus_focal_by_hand_with_class_weights_and_ignored_pixels():
    z, y = _seg(2)
    y[0, 0, :2] = 255
    spec = {
        "loss": "compound",
        "params": {
            "terms": [
                {"loss": "dice", "params": {"ignore_index": 255, "weight": [0.0, 1.0, 3.0]}, "weight": 2.0},
                {"loss": "focal", "params": {"gamma": 2.0, "ignore_index": 255}, "weight": 0.5},
            ]
        },
    }
    # Dice by hand with the ignored pixels removed from every sum: zero their probabilities and targets.
    keep = (y != 255).reshape(2, -1)
    n, c = z.shape[:2]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).reshape(n, c, -1) * keep[:, None]
    g = np.stack([(y.reshape(n, -1) == k) & keep for k in range(c)], axis=1).astype(np.float64)
    dice_nc = 1 - (2 * (p * g).sum(2) + 1e-5) / (p.sum(2) + g.sum(2) + 1e-5)
    w = np.array([0.0, 1.0, 3.0])
    dice = (dice_nc * w).sum() / (n * w.sum())
    # Focal: -(1 - p_y)^2 log p_y, mean over the counted pixels.
    probs = ref.softmax(z, axis=1)
    terms = [
        -((1 - probs[i, t, a, b]) ** 2) * math.log(probs[i, t, a, b])
        for i in range(n)
        for a in range(z.shape[2])
        for b in range(z.shape[3])
        if (t := y[i, a, b]) != 255
    ]
    expected = 2.0 * dice + 0.5 * np.mean(terms)
    actual = _value(advisor.build_loss(spec), torch.tensor(z), torch.tensor(y))
    assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def test_sigmoid_dice_plus_bce_on_one_channel_masks():
    g = np.random.default_rng(3)
    z = g.normal(size=(2, 1, 4, 4))
    mask = g.integers(0, 2, size=(2, 1, 4, 4)).astype(np.float64)
    spec = {
        "loss": "compound",
        "params": {
            "terms": [
                {"loss": "dice", "params": {"activation": "sigmoid", "smooth_nr": 1.0, "smooth_dr": 1.0}},
                {"loss": "bce", "weight": 0.25},
            ]
        },
    }
    p = 1 / (1 + np.exp(-z))
    tp, sp, sg = (p * mask).sum((2, 3)), p.sum((2, 3)), mask.sum((2, 3))
    dice = (1 - (2 * tp + 1.0) / (sp + sg + 1.0)).mean()
    bce = -(mask * np.log(p) + (1 - mask) * np.log(1 - p)).mean()
    actual = _value(advisor.build_loss(spec), torch.tensor(z), torch.tensor(mask))
    assert_allclose(actual, dice + 0.25 * bce, rtol=1e-10)


def test_regression_l1_plus_mse():
    x, y = np.array([1.0, -2.0, 0.5, 3.0]), np.array([0.0, -1.0, 0.5, 5.0])
    spec = {
        "loss": "compound",
        "params": {"terms": [{"loss": "l1", "weight": 2.0}, {"loss": "mse", "weight": 0.1}]},
    }
    # |r| = [1, 1, 0, 2], r^2 = [1, 1, 0, 4]: 2 * 4 / 4 + 0.1 * 6 / 4
    actual = _value(advisor.build_loss(spec), torch.tensor(x), torch.tensor(y))
    assert_allclose(actual, 2.0 + 0.15, rtol=1e-12)


def test_gradient_is_the_weighted_sum_of_the_terms_gradients():
    z, y = _seg(4)
    x = torch.tensor(z, requires_grad=True)
    advisor.build_loss(DICE_FOCAL)(x, torch.tensor(y)).backward()
    parts = []
    for term in DICE_FOCAL["params"]["terms"]:
        xi = torch.tensor(z, requires_grad=True)
        advisor.build_loss({"loss": term["loss"], "params": term["params"]})(xi, torch.tensor(y)).backward()
        parts.append(term["weight"] * xi.grad)
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    torch.testing.assert_close(x.grad, parts[0] + parts[1], rtol=1e-12, atol=1e-14)


def test_a_multi_task_head_can_be_a_compound_loss():
    z, y = _seg(5)
    reg_x, reg_y = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 2.0])
    spec = {"loss": "multi_task", "params": {"heads": {"mask": DICE_FOCAL, "size": {"loss": "mse"}}}}
    loss = advisor.build_loss(spec)
    total = loss({"mask": torch.tensor(z), "size": reg_x}, {"mask": torch.tensor(y), "size": reg_y})
    dice = _dice_by_hand(z, y, include_background=False, batch=True)
    focal = ref.focal(z, y, 2.0)
    # static weights 1: the compound head plus MSE ((1 - 0)^2 + 0) / 2 = 0.5
    assert_allclose(total.detach().numpy(), dice + 0.5 * focal + 0.5, rtol=1e-10)


# ------------------------------------------------------------------------------------------- round trip


def test_spec_round_trip_fills_every_terms_defaults():
    normalized = advisor.normalize_spec(DICE_FOCAL)
    terms = normalized.params["terms"]
    assert [t["loss"] for t in terms] == ["dice", "focal"]
    assert terms[0]["params"]["smooth_nr"] == 1e-5 and terms[1]["params"]["mean_over"] == "samples"
    module = advisor.build_loss(DICE_FOCAL)
    assert module.spec() == normalized
    assert advisor.build_loss(module.spec().to_json()).spec() == normalized
    assert json.loads(module.spec().to_json()) == normalized.model_dump()
    assert module.heads == ("segmentation",)


def test_json_schema_describes_the_terms():
    schema = advisor.spec_json_schema()
    compound = next(a for a in schema["oneOf"] if a["properties"]["loss"]["const"] == "compound")
    terms = compound["properties"]["params"]["properties"]["terms"]
    assert terms["minItems"] == 2 and terms["maxItems"] == 8
    term = schema["$defs"][terms["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(term["properties"]) == {"loss", "params", "weight"}
    assert term["properties"]["weight"]["exclusiveMinimum"] == 0


# -------------------------------------------------------------------------------------------- validation


def _terms(*terms):
    return {"loss": "compound", "params": {"terms": list(terms)}}


@pytest.mark.parametrize(
    ("spec", "field", "fragments"),
    [
        # different heads: the term's loss is what to change, and the losses that would fit are listed
        (_terms({"loss": "dice"}, {"loss": "mse"}), "params.terms.1.loss", ["'mse'", "regression", "focal"]),
        # same head, sigmoid vs softmax logits: bce cannot read softmax logits
        (
            _terms({"loss": "dice"}, {"loss": "bce"}),
            "params.terms.1.loss",
            ["sigmoid_logits", "softmax_logits"],
        ),
        # the activation parameter is what differs: point at the params
        (
            _terms({"loss": "cross_entropy"}, {"loss": "dice", "params": {"activation": "sigmoid"}}),
            "params.terms.1.params",
            ["sigmoid_logits", "softmax_logits"],
        ),
        # regression heads share, but quantiles are read differently from point values
        (_terms({"loss": "mse"}, {"loss": "quantile"}), "params.terms.1.loss", ["quantiles", "values"]),
        (_terms({"loss": "dice"}, {"loss": "dicee"}), "params.terms.1.loss", ["unknown loss", "'dice'"]),
        (_terms({"loss": "dice"}, {"loss": "compound"}), "params.terms.1.loss", ["cannot be nested"]),
        (_terms({"loss": "multi_task"}, {"loss": "dice"}), "params.terms.0.loss", ["cannot be nested"]),
        (
            _terms({"loss": "dice"}, {"loss": "focal", "params": {"reduction": "none"}}),
            "params.terms.1.params.reduction",
            ["reduction 'none'"],
        ),
        (
            _terms({"loss": "dice"}, {"loss": "focal", "params": {"gama": 2.0}}),
            "params.terms.1.params.gama",
            ["unknown field", "did you mean 'gamma'"],
        ),
        (
            _terms({"loss": "dice", "params": {"ignore_index": 255}}, {"loss": "focal"}),
            "params.terms.1.params.ignore_index",
            ["-100", "255"],
        ),
        (
            _terms({"loss": "dice", "weight": 0.0}, {"loss": "focal"}),
            "params.terms.0.weight",
            ["greater than 0"],
        ),
        (
            _terms({"loss": "dice", "weight": -1.0}, {"loss": "focal"}),
            "params.terms.0.weight",
            ["greater than 0"],
        ),
        (
            _terms({"loss": "dice", "weight": math.inf}, {"loss": "focal"}),
            "params.terms.0.weight",
            ["finite"],
        ),
        (_terms({"loss": "dice"}), "params.terms", ["at least 2"]),
        (_terms(*[{"loss": "l1"}] * 9), "params.terms", ["at most 8"]),
        (
            _terms({"loss": "dice", "path": "os.system"}, {"loss": "focal"}),
            "params.terms.0.path",
            ["unknown"],
        ),
    ],
)
def test_invalid_compounds_name_the_field(spec, field, fragments):
    with pytest.raises(advisor.SpecError) as caught:
        advisor.build_loss(spec)
    violation = caught.value.violations[0]
    assert violation.field == field, caught.value.violations
    for fragment in fragments:
        assert fragment in violation.description, violation.description


def test_compatible_terms_across_head_types():
    # Each of these shares a head and a format; building them must not raise.
    for terms in (
        [{"loss": "cross_entropy"}, {"loss": "focal"}, {"loss": "poly1"}],
        [{"loss": "bce"}, {"loss": "binary_focal"}, {"loss": "asl"}],
        [{"loss": "poisson_nll"}, {"loss": "tweedie"}],
        [{"loss": "si_sdr"}, {"loss": "mr_stft"}],
        [
            {"loss": "dice", "params": {"activation": "sigmoid"}},
            {"loss": "lovasz", "params": {"variant": "hinge"}},
        ],
    ):
        loss = advisor.build_loss(_terms(*terms))
        assert len(loss.terms) == len(terms)
    # ... while a rate-input Poisson NLL does not read the log-rate Tweedie does.
    with pytest.raises(advisor.SpecError) as caught:
        advisor.build_loss(
            _terms({"loss": "tweedie"}, {"loss": "poisson_nll", "params": {"log_input": False}})
        )
    assert caught.value.violations[0].field == "params.terms.1.params"


def test_user_losses_join_a_compound_only_with_a_declared_format(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @advisor.register_loss("plain_l1", heads=["regression"], input="(N,)", target="(N,)", reference="ours")
    class PlainL1(advisor.CatalogLoss):
        """Plain L1: |input - target|."""

        Params = ReductionParams

        def compute(self, input, target):
            return self.reduce((input - target).abs())

    with pytest.raises(advisor.SpecError) as caught:
        advisor.build_loss(_terms({"loss": "mse"}, {"loss": "plain_l1"}))
    assert caught.value.violations[0].field == "params.terms.1.loss"
    assert "declares no tensor format" in str(caught.value)

    PlainL1.tensor_format = TensorFormat.of("values", "like_input")
    loss = advisor.build_loss(_terms({"loss": "mse"}, {"loss": "plain_l1", "weight": 3.0}))
    x, y = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0])
    assert loss(x, y).item() == pytest.approx(0.5 + 3.0 * 0.5)


# ------------------------------------------------------------------------------------- checks and compile


def test_compound_compiles_into_one_graph_with_checks_off():
    z, y = _seg(6)
    x, t = torch.tensor(z, dtype=torch.float32), torch.tensor(y)
    loss = advisor.build_loss(DICE_FOCAL)
    torch._dynamo.reset()
    with checks(False):
        explained = torch._dynamo.explain(loss)(x, t)
        compiled = torch.compile(loss, fullgraph=True, backend="eager")(x, t)
    assert explained.graph_break_count == 0, explained.break_reasons
    torch.testing.assert_close(compiled, loss(x, t))
    torch._dynamo.reset()
    assert torch._dynamo.explain(loss)(x, t).graph_break_count > 0  # the checks are what broke the graph


def test_trial_adapter_of_a_compound_is_its_terms_layout():
    """Trials feed a compound the output layout its terms share: one sigmoid channel with float masks for
    sigmoid Dice + BCE, C softmax channels with index masks for Dice + focal."""
    from advisor.task import Head
    from advisor.trials.adapters import adapter_for

    head = Head(name="mask", type="segmentation", num_classes=2, foreground_shares=[0.01])
    sigmoid = advisor.normalize_spec({"loss": "compound", "params": {"terms": [
        {"loss": "dice", "params": {"activation": "sigmoid"}, "weight": 1.0}, {"loss": "bce", "weight": 1.0},
    ]}})  # fmt: skip
    adapter = adapter_for(head, sigmoid)
    assert (adapter.out_dim, adapter.float_target) == (1, True)
    masks = torch.randint(0, 2, (2, 4, 4))
    value = advisor.build_loss(sigmoid)(
        adapter.loss_input(torch.randn(2, 1, 4, 4)), adapter.loss_target(masks)
    )
    assert torch.isfinite(value)
    softmax = advisor.normalize_spec({"loss": "compound", "params": {"terms": [
        {"loss": "dice", "weight": 1.0}, {"loss": "focal", "weight": 1.0},
    ]}})  # fmt: skip
    assert (adapter_for(head, softmax).out_dim, adapter_for(head, softmax).float_target) == (2, False)
