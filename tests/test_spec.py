"""Spec parsing, validation errors, JSON Schema export and user registration."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import pytest
import torch
from pydantic import Field

import advisor
from advisor.losses import registry
from advisor.losses.regression import ReductionParams


def _error(spec) -> advisor.SpecError:
    with pytest.raises(advisor.SpecError) as caught:
        advisor.build_loss(spec)
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_accepts_spec_object_dict_and_json_text():
    as_dict = {"spec_version": 1, "loss": "huber", "params": {"delta": 2.0}}
    for spec in (advisor.LossSpec(**as_dict), as_dict, json.dumps(as_dict)):
        loss = advisor.build_loss(spec)
        assert isinstance(loss, torch.nn.Module)
        assert loss.params.delta == 2.0


def test_unknown_loss_suggests_close_names():
    error = _error({"loss": "focall"})
    assert error.violations[0].field == "loss"
    assert "'focall'" in str(error) and "'focal'" in str(error)


def test_unknown_parameter_names_it_and_lists_allowed():
    error = _error({"loss": "focal", "params": {"gama": 1.0}})
    assert error.violations[0].field == "params.gama"
    assert "did you mean 'gamma'" in str(error) and "allowed parameters" in str(error)


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"gamma": -1.0}, "params.gamma", "got -1.0: Input should be greater than or equal to 0"),
        ({"gamma": "strong"}, "params.gamma", "got 'strong': Input should be a valid number"),
        ({"alpha": 0.25}, "params.alpha", "got 0.25: Input should be a valid list"),
        ({"alpha": [0.5, -1.0]}, "params.alpha.1", "got -1.0: Input should be greater than or equal to 0"),
        ({"reduction": "avg"}, "params.reduction", "got 'avg': Input should be 'none', 'mean' or 'sum'"),
        (
            {"mean_over": "pixels"},
            "params.mean_over",
            "got 'pixels': Input should be 'samples' or 'elements'",
        ),
    ],
)
def test_invalid_values_name_loss_parameter_value_and_allowed(params, field, fragment):
    error = _error({"loss": "focal", "params": params})
    violation = error.violations[0]
    assert violation.field == field
    assert "loss 'focal'" in violation.description and fragment in violation.description


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ('{"loss": "mse",', "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"params": {}}, "required field is missing"),
        ({"loss": "mse", "spec_version": 2}, "Input should be 1"),
        ({"loss": "mse", "extra": 1}, "unknown field"),
        ({"loss": "quantile", "params": {"quantiles": [0.9, 0.1]}}, "strictly increasing"),
        ({"loss": "quantile", "params": {"quantiles": [0.0, 0.5]}}, "(0, 1)"),
        ({"loss": "tweedie", "params": {"power": 2.0}}, "less than 2"),
        (
            {"loss": "mr_stft", "params": {"fft_sizes": [512], "hop_sizes": [64, 32], "win_lengths": [512]}},
            "length",
        ),
        ({"loss": "dice_ce", "params": {"activation": "none"}}, "CE term needs logits"),
        ({"loss": "class_balanced"}, "required field is missing"),
    ],
)
def test_malformed_and_out_of_range_specs(spec, fragment):
    assert fragment in str(_error(spec))


def test_multi_task_errors_point_into_the_head():
    spec = {"loss": "multi_task", "params": {"heads": {"label": {"loss": "focal", "params": {"gamma": -2}}}}}
    assert _error(spec).violations[0].field == "params.heads.label.params.gamma"
    spec = {
        "loss": "multi_task",
        "params": {"heads": {"a": {"loss": "mse", "params": {"reduction": "none"}}}},
    }
    assert "reduction 'none'" in str(_error(spec))
    spec = {
        "loss": "multi_task",
        "params": {"heads": {"a": {"loss": "mse"}}, "weighting": {"scheme": "static", "weights": {"b": 1}}},
    }
    assert "exactly the heads" in str(_error(spec))
    nested = {"loss": "multi_task", "params": {"heads": {"a": {"loss": "mse"}}}}
    assert "cannot be nested" in str(_error({"loss": "multi_task", "params": {"heads": {"inner": nested}}}))


def test_json_schema_lists_every_loss_with_its_parameters():
    schema = advisor.spec_json_schema()
    by_name = {alt["properties"]["loss"]["const"]: alt for alt in schema["oneOf"]}
    assert sorted(by_name) == advisor.loss_names()
    focal_params = by_name["focal"]["properties"]["params"]["properties"]
    assert focal_params["gamma"]["minimum"] == 0 and focal_params["gamma"]["default"] == 2.0
    # Nested definitions (multi_task weighting schemes) resolve inside the document.
    text = json.dumps(schema)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/$defs/')[1:]}:
        assert ref in schema["$defs"]


class _CountingParams(ReductionParams):
    scale: float = Field(1.0, gt=0, description="Multiplier.")


def test_user_registration_builds_and_round_trips(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @advisor.register_loss("scaled_l1", heads=["regression"], input="(N,)", target="(N,)", reference="ours")
    class ScaledL1(advisor.CatalogLoss):
        """Scaled L1: scale * |input - target|."""

        Params = _CountingParams

        def compute(self, input, target):
            return self.params.scale * (input - target).abs().mean()

    loss = advisor.build_loss({"loss": "scaled_l1", "params": {"scale": 3.0}})
    assert loss(torch.tensor([1.0]), torch.tensor([3.0])).item() == pytest.approx(6.0)
    assert advisor.build_loss(loss.spec()).spec() == loss.spec()
    assert not advisor.get_loss_info("scaled_l1").builtin
    with pytest.raises(ValueError, match="already registered"):
        advisor.register_loss("mse", heads=["regression"], input="", target="", reference="")(ScaledL1)
    with pytest.raises(ValueError, match="unknown head types"):
        advisor.register_loss("x", heads=["images"], input="", target="", reference="")


def test_entry_point_plugins_register_and_broken_ones_only_warn(monkeypatch, tmp_path):
    plugin = tmp_path / "my_losses_plugin.py"
    plugin.write_text(
        "import advisor\n"
        "from advisor.losses.regression import MSELoss\n"
        "advisor.register_loss('plugin_mse', heads=['regression'], input='', target='', reference='plugin')("
        "type('PluginMSE', (MSELoss,), {}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    good = EntryPoint("plugin_mse", "my_losses_plugin", registry.ENTRY_POINT_GROUP)
    broken = EntryPoint("broken", "no_such_module_anywhere", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [good, broken] if group == registry.ENTRY_POINT_GROUP else []
    )
    with pytest.warns(UserWarning, match="broken"):
        assert "plugin_mse" in advisor.loss_names()
    assert advisor.build_loss({"loss": "plugin_mse"})(torch.zeros(2), torch.ones(2)).item() == 1.0


def test_a_spec_cannot_name_an_import_path():
    error = _error({"loss": "os.system", "params": {}})
    assert "unknown loss" in str(error)
