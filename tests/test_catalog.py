"""Catalog-wide guarantees: every canonical name exists, builds from defaults, gives finite differentiable
output, survives low-precision inputs, and round-trips through its spec."""

from __future__ import annotations

import json

import pytest
import torch

import advisor
from tests.examples import EXAMPLES, default_spec, example

CANONICAL = [
    "mse",
    "l1",
    "huber",
    "smooth_l1",
    "log_cosh",
    "quantile",
    "poisson_nll",
    "gaussian_nll",
    "beta_nll",
    "tweedie",
    "cross_entropy",
    "nll",
    "bce",
    "focal",
    "binary_focal",
    "class_balanced",
    "ldam",
    "logit_adjusted",
    "poly1",
    "gce",
    "sce",
    "asl",
    "dice",
    "dice_ce",
    "tversky",
    "focal_tversky",
    "jaccard",
    "lovasz",
    "kl_div",
    "stft",
    "mr_stft",
    "si_sdr",
    "snr",
    "esr",
    "multi_task",
]


def _float_inputs(value, dtype):
    if isinstance(value, dict):
        return {k: _float_inputs(v, dtype) for k, v in value.items()}
    return value.detach().to(dtype).requires_grad_() if value.is_floating_point() else value


def _leaves(value):
    return list(value.values()) if isinstance(value, dict) else [value]


def test_every_canonical_name_is_registered_with_an_example():
    assert sorted(CANONICAL) == advisor.loss_names()
    assert sorted(EXAMPLES) == sorted(CANONICAL)


@pytest.mark.parametrize("name", CANONICAL)
def test_builds_from_defaults_with_finite_value_and_gradient(name):
    loss = advisor.build_loss(default_spec(name))
    input, target = example(name)
    input = _float_inputs(input, torch.float32)
    value = loss(input, target)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    for leaf in _leaves(input):
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
        assert leaf.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", CANONICAL)
def test_low_precision_inputs_are_computed_in_float32(name, dtype):
    loss = advisor.build_loss(default_spec(name))
    input, target = example(name)
    low = _float_inputs(input, dtype)
    value = loss(low, target)
    assert value.dtype == torch.float32
    value.backward()
    assert all(torch.isfinite(leaf.grad.float()).all() for leaf in _leaves(low))
    # The same half-precision values promoted by hand give the same float32 result: the loss upcasts first.
    promoted = _float_inputs(low, torch.float32)
    torch.testing.assert_close(value, loss(promoted, target), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", CANONICAL)
def test_autocast_region_gives_float32_finite_values(name):
    loss = advisor.build_loss(default_spec(name))
    input, target = example(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(_float_inputs(input, torch.bfloat16), target)
    assert value.dtype == torch.float32 and torch.isfinite(value)


@pytest.mark.parametrize("name", CANONICAL)
def test_spec_round_trip_is_identity(name):
    normalized = advisor.normalize_spec(default_spec(name))
    module = advisor.build_loss(normalized)
    assert module.spec() == normalized
    assert advisor.build_loss(module.spec().to_json()).spec() == normalized
    assert json.loads(module.spec().to_json()) == normalized.model_dump()


@pytest.mark.parametrize("name", CANONICAL)
def test_every_entry_has_metadata_schema_and_formula(name):
    info = advisor.get_loss_info(name)
    assert info.heads and info.input and info.target and info.reference
    assert "=" in info.description or ":" in info.summary  # the docstring opens with the formula
    schema = info.params_schema()
    for param, prop in schema["properties"].items():
        assert prop.get("description"), f"{name}.{param} has no one-line meaning"


@pytest.mark.parametrize(
    "name", [n for n in CANONICAL if n not in ("stft", "mr_stft", "lovasz", "multi_task")]
)
def test_reduction_none_sum_and_mean_agree(name):
    spec = default_spec(name)
    info = advisor.get_loss_info(name)
    field = info.params_model.model_fields.get("reduction")
    if field is None or "none" not in str(field.annotation):
        pytest.skip("no per-element reduction")
    input, target = example(name)
    params = spec["params"]
    none = advisor.build_loss({"loss": name, "params": {**params, "reduction": "none"}})(input, target)
    total = advisor.build_loss({"loss": name, "params": {**params, "reduction": "sum"}})(input, target)
    torch.testing.assert_close(none.sum(), total)
