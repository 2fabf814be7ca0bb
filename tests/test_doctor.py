"""The loss doctor: every documented example (runtime and static), thresholds, the inputs ``check`` accepts,
``watch`` (warn once, then no checks and no host reads; torch.compile), the static flow rules and the CLI."""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import advisor
import advisor.doctor
from advisor.cli import app
from advisor.doctor import FINDINGS, LossDoctorWarning, check, scan_paths, scan_source, watch
from advisor.doctor import findings as findings_module
from advisor.doctor import runtime as runtime_checks
from advisor.doctor import static as static_checks
from advisor.recommendation import LossChoice, RankedCandidate
from advisor.spec import LossSpec

ROOT = Path(__file__).resolve().parents[1]


def _examples(kind: str) -> list[Any]:
    return [
        pytest.param(doc.id, example, id=f"{doc.id}-{i}")
        for doc in FINDINGS.values()
        for i, example in enumerate(doc.examples)
        if example.kind == kind
    ]


def _run_snippet(code: str) -> list[advisor.doctor.Finding]:
    torch.manual_seed(0)
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "F": F, "advisor": advisor}
    exec(compile(code, "<example>", "exec"), namespace)
    return check(namespace["loss"], namespace["outputs"], namespace["targets"])


def _ids(found: list[advisor.doctor.Finding]) -> list[str]:
    return [f.id for f in found]


# ----------------------------------------------------------------------------------- documented examples


@pytest.mark.parametrize(("finding_id", "example"), _examples("runtime"))
def test_runtime_example_triggers_its_finding_with_numbers(finding_id, example):
    found = _run_snippet(example.triggers)
    assert finding_id in _ids(found), found
    finding = next(f for f in found if f.id == finding_id)
    assert any(ch.isdigit() for ch in finding.seen), finding.seen  # what it saw, in numbers
    assert finding.severity == FINDINGS[finding_id].severity and finding.fix and finding.why
    assert finding.loss  # names the loss it checked


@pytest.mark.parametrize(("finding_id", "example"), _examples("runtime"))
def test_runtime_clean_example_has_no_findings(finding_id, example):
    assert _run_snippet(example.clean) == []


@pytest.mark.parametrize(("finding_id", "example"), _examples("static"))
def test_static_example_triggers_its_finding_at_a_line(finding_id, example):
    found = scan_source(example.triggers, "example.py")
    assert finding_id in _ids(found), found
    finding = next(f for f in found if f.id == finding_id)
    lines = example.triggers.splitlines()
    assert finding.path == "example.py" and 1 <= finding.line <= len(lines) and finding.column >= 1
    # the reported position is a call in the snippet
    assert lines[finding.line - 1][finding.column - 1 :].split("(")[0].strip()


@pytest.mark.parametrize(("finding_id", "example"), _examples("static"))
def test_static_clean_example_has_no_findings(finding_id, example):
    assert scan_source(example.clean, "example.py") == []


def test_every_finding_is_documented_and_every_check_has_examples():
    assert all(doc.examples for doc in FINDINGS.values())
    runtime_ids = {doc.id for doc in FINDINGS.values() if "runtime" in doc.kinds}
    assert set(runtime_checks.CHECKS) == runtime_ids == set(FINDINGS)  # every finding is checked at runtime
    static_ids = {finding_id for finding_id, _ in static_checks._MISUSE.values()} | {"sigmoid-applied-twice"}
    assert static_ids == {doc.id for doc in FINDINGS.values() if "static" in doc.kinds}
    assert len(FINDINGS) == 11


def test_findings_markdown_is_generated_from_the_declarations():
    text = (ROOT / "advisor" / "doctor" / "FINDINGS.md").read_text()
    assert text == findings_module.markdown(), (
        "run: python -m advisor.doctor.findings > advisor/doctor/FINDINGS.md"
    )
    for doc in FINDINGS.values():
        assert f"## `{doc.id}` ({doc.severity})" in text
        assert doc.examples[0].triggers in text and doc.examples[0].clean in text


def test_a_check_for_an_undeclared_finding_is_refused():
    with pytest.raises(KeyError, match="no finding 'made-up'"):
        runtime_checks._check("made-up")


# ---------------------------------------------------------------------------------- runtime: what it says


def test_softmax_finding_states_the_row_sums_and_range():
    probs = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    (finding,) = check(nn.CrossEntropyLoss(), probs, torch.tensor([2, 2]))
    assert "sum to 1.000 +/- 0.000 and lie in [0.1, 0.8]" in finding.seen
    assert "within 0.01" in finding.seen  # the threshold is stated
    assert str(finding).startswith("nn.CrossEntropyLoss: error softmax-into-cross-entropy: rows of the input")


def test_row_sums_outside_the_tolerance_are_not_probabilities():
    rows = torch.tensor([[0.2, 0.3, 0.52], [0.1, 0.1, 0.8]])  # first row sums to 1.02
    assert check(nn.CrossEntropyLoss(), rows, torch.tensor([2, 2])) == []


def test_value_range_findings_need_sixteen_values():
    few = torch.sigmoid(torch.sigmoid(torch.linspace(-3, 3, 15)))
    assert check(nn.BCELoss(), few, torch.ones(15)) == []
    assert _ids(check(nn.BCELoss(), torch.cat([few, few[:1] + 0.01]), torch.ones(16))) == [
        "sigmoid-applied-twice"
    ]


def test_constant_half_is_not_a_double_sigmoid_and_zero_logits_are_not_probabilities():
    assert check(nn.BCELoss(), torch.full((64,), 0.5), torch.ones(64)) == []
    assert check(nn.BCEWithLogitsLoss(), torch.zeros(64), torch.ones(64)) == []


def test_sigmoid_twice_before_bce_with_logits_reports_only_the_double_sigmoid():
    outputs = torch.sigmoid(torch.sigmoid(torch.randn(64)))
    (finding,) = check(nn.BCEWithLogitsLoss(), outputs, torch.ones(64))
    assert finding.id == "sigmoid-applied-twice" and "which applies another" in finding.seen


def test_class_weight_order_is_a_hedged_warning_with_counts_and_a_minimum_batch():
    weight = torch.tensor([1.0, 5.0])
    targets = torch.cat([torch.zeros(3), torch.ones(28)]).long()  # 31 targets: below the minimum of 32
    assert check(nn.CrossEntropyLoss(weight=weight), torch.randn(31, 2), targets) == []
    targets = torch.cat([torch.zeros(4), torch.ones(28)]).long()
    (finding,) = check(nn.CrossEntropyLoss(weight=weight), torch.randn(32, 2), targets)
    assert finding.severity == "warning"
    assert "weight[1] = 5 is the largest" in finding.seen and "(28 of 32 targets)" in finding.seen
    assert "class 0 has 4" in finding.seen and "32 or more targets" in finding.seen
    # a frequent class weighted high but the rare one not at least 2x rarer: no finding
    targets = torch.cat([torch.zeros(15), torch.ones(25)]).long()
    assert check(nn.CrossEntropyLoss(weight=weight), torch.randn(40, 2), targets) == []


def test_focal_alpha_is_read_as_class_weights():
    spec = {"loss": "focal", "params": {"alpha": [0.25, 0.75]}}
    targets = torch.cat([torch.zeros(5), torch.ones(45)]).long()
    (finding,) = check(spec, torch.randn(50, 2), targets)
    assert finding.id == "class-weight-order" and "alpha[1] = 0.75" in finding.seen


def test_variance_head_thresholds_are_stated_and_small_stds_count_too():
    (finding,) = check({"loss": "beta_nll"}, torch.randn(50, 2), 0.01 * torch.randn(50))
    assert finding.id == "variance-head-unscaled-target"
    assert "below 0.1 or above 10" in finding.seen
    assert check({"loss": "gaussian_nll"}, torch.randn(50, 2), 5 * torch.randn(50)) == []


def test_out_of_range_index_respects_ignore_index_and_one_binary_channel():
    targets = torch.tensor([0, 1, -100, 2])
    assert check(nn.CrossEntropyLoss(), torch.randn(4, 3), targets) == []
    (finding,) = check(nn.CrossEntropyLoss(ignore_index=255), torch.randn(4, 3), targets)
    assert "[-100, 2]" in finding.seen and "1 of 4 outside" in finding.seen
    # the Lovasz hinge reads one sigmoid channel against 0/1 indices: index 1 is valid there
    hinge = {"loss": "lovasz", "params": {"variant": "hinge"}}
    assert check(hinge, torch.randn(2, 1, 4, 4), torch.randint(0, 2, (2, 4, 4))) == []


def test_one_hot_targets_are_fine_where_torch_reads_probabilities():
    one_hot = F.one_hot(torch.randint(0, 3, (8,)), 3).float()
    assert check(nn.CrossEntropyLoss(), torch.randn(8, 3), one_hot) == []
    assert _ids(check(nn.NLLLoss(), torch.randn(8, 3).log_softmax(1), one_hot)) == [
        "targets-not-class-indices"
    ]
    fractional = check({"loss": "cross_entropy"}, torch.randn(4, 3), torch.tensor([0.5, 1.0, 2.0, 0.0]))
    assert _ids(fractional) == ["targets-not-class-indices"] and "fractions" in fractional[0].seen


def test_reduction_sum_is_info_and_counts_the_elements():
    (finding,) = check(
        functools.partial(F.cross_entropy, reduction="sum"), torch.randn(8, 3), torch.zeros(8).long()
    )
    assert finding.severity == "info" and finding.loss == "F.cross_entropy" and "8x" in finding.seen


def test_functional_partial_carries_label_smoothing():
    smoothed = F.one_hot(torch.randint(0, 4, (8,)), 4).float() * 0.8 + 0.05
    loss = functools.partial(F.cross_entropy, label_smoothing=0.2)
    (finding,) = check(loss, torch.randn(8, 4), smoothed)
    assert finding.id == "label-smoothing-twice" and "e ~ 0.2" in finding.seen and "e ~ 0.36" in finding.seen
    assert check(F.cross_entropy, torch.randn(8, 4), smoothed) == []


def test_check_reads_the_catalog_declared_format():
    probs = torch.randn(2, 3, 4, 4).softmax(1)
    dice = {"loss": "dice", "params": {"activation": "none"}}  # reads probabilities: fine
    assert check(dice, probs, torch.randint(0, 3, (2, 4, 4))) == []
    dice_softmax = {"loss": "dice"}  # applies a softmax itself
    assert _ids(check(dice_softmax, probs, torch.randint(0, 3, (2, 4, 4)))) == ["softmax-into-cross-entropy"]
    kl = {"loss": "kl_div"}  # reads log-probabilities
    assert _ids(check(kl, torch.randn(4, 3) * 3, torch.randn(4, 3).softmax(1))) == ["nll-without-log-softmax"]


@pytest.mark.parametrize(
    "make",
    [
        lambda spec: spec,
        lambda spec: spec.model_dump(),
        lambda spec: spec.to_json(),
        lambda spec: LossChoice(spec=spec),
        lambda spec: RankedCandidate(
            rank=1,
            head="y",
            spec=spec,
            prior=0.5,
            score=1.0,
            tie_group=1,
            rule_id="r",
            title="t",
            rationale="r",
            references=[],
        ),
        lambda spec: advisor.build_loss(spec),
        lambda spec: watch(spec),
    ],
    ids=["LossSpec", "dict", "json", "LossChoice", "RankedCandidate", "module", "watched"],
)
def test_every_form_of_a_recommendation_reaches_the_doctor(make):
    spec = LossSpec(loss="bce", params={"reduction": "sum"})
    found = check(make(spec), torch.sigmoid(torch.randn(32)), torch.ones(32))
    assert _ids(found) == ["probabilities-into-bce-with-logits", "reduction-sum"]
    assert found[0].loss == "catalog 'bce'"


def test_multi_task_heads_are_checked_with_their_own_tensors():
    spec = {
        "loss": "multi_task",
        "params": {"heads": {"label": {"loss": "cross_entropy"}, "price": {"loss": "gaussian_nll"}}},
    }
    outputs = {"label": torch.randn(8, 3).softmax(1), "price": torch.randn(8, 2)}
    targets = {"label": torch.randint(0, 3, (8,)), "price": 1000 * torch.randn(8)}
    found = check(spec, outputs, targets)
    assert [(f.id, f.head) for f in found] == [
        ("softmax-into-cross-entropy", "label"),
        ("variance-head-unscaled-target", "price"),
    ]
    assert "head 'label'" in str(found[0])


def test_compound_terms_are_checked_once_per_finding():
    spec = {"loss": "compound", "params": {"terms": [{"loss": "dice"}, {"loss": "focal"}]}}
    found = check(spec, torch.randn(2, 3, 4, 4).softmax(1), torch.randint(0, 3, (2, 4, 4)))
    assert _ids(found) == ["softmax-into-cross-entropy"]


def test_other_torch_losses_get_the_reduction_check_and_unknown_callables_a_type_error():
    assert _ids(check(nn.L1Loss(reduction="sum"), torch.randn(4), torch.randn(4))) == ["reduction-sum"]
    assert check(nn.L1Loss(), torch.randn(4), torch.randn(4)) == []
    with pytest.raises(TypeError, match=r"F\.cross_entropy"):
        check(lambda x, y: (x - y).abs().mean(), torch.randn(4), torch.randn(4))


def test_findings_come_errors_first():
    loss = nn.CrossEntropyLoss(reduction="sum")
    found = check(loss, torch.randn(6, 3).softmax(1), torch.tensor([1, 2, 3, 1, 2, 3]))
    assert [f.severity for f in found] == ["error", "error", "info"]


# ----------------------------------------------------------------------------------------------- watch


def test_watch_warns_once_per_finding_and_returns_the_loss_value():
    criterion = watch(nn.CrossEntropyLoss(), calls=5)
    probs, targets = torch.randn(8, 4).softmax(1), torch.randint(0, 4, (8,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = [criterion(probs, targets) for _ in range(7)]
    doctor = [w for w in caught if issubclass(w.category, LossDoctorWarning)]
    assert len(doctor) == 1 and "softmax-into-cross-entropy" in str(doctor[0].message)
    assert issubclass(LossDoctorWarning, UserWarning)
    assert criterion.checked == 5 and not criterion.watching
    assert [f.id for f in criterion.findings] == ["softmax-into-cross-entropy"]
    assert torch.equal(values[-1], nn.CrossEntropyLoss()(probs, targets))


def test_watch_stops_checking_after_the_window():
    criterion = watch(nn.MSELoss(reduction="sum"), calls=20)
    counted = mock.Mock(side_effect=runtime_checks.check_views)
    x, y = torch.randn(16), torch.randn(16)
    with mock.patch("advisor.doctor.wrapper.check_views", counted), warnings.catch_warnings():
        warnings.simplefilter("ignore", LossDoctorWarning)
        for _ in range(25):
            criterion(x, y)
    assert counted.call_count == 20


class HostRead(BaseException):
    """Raised by patched tensor reads; a BaseException, so the doctor's own error guard cannot swallow it."""


def test_after_the_window_nothing_is_read_from_the_device():
    criterion = watch(nn.CrossEntropyLoss(), calls=2)
    x, y = torch.randn(8, 4), torch.randint(0, 4, (8,))
    criterion(x, y), criterion(x, y)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise HostRead("host read after the watch window")

    reads = ("item", "tolist", "cpu", "__bool__", "__float__", "__int__")
    with contextlib.ExitStack() as stack:
        for name in reads:
            stack.enter_context(mock.patch.object(torch.Tensor, name, refuse))
        value = criterion(x, y)
        with pytest.raises(HostRead):  # the patch is live: a check in the window would have hit it
            criterion.watching = True
            criterion(x, y)
    assert value.shape == ()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_no_synchronisation_after_the_window():
    criterion = watch(nn.CrossEntropyLoss(), calls=3)
    x, y = torch.randn(64, 10, device="cuda"), torch.randint(0, 10, (64,), device="cuda")
    for _ in range(3):
        criterion(x, y)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError):  # the mode is live: a host read raises
            torch.ones(1, device="cuda").item()
        value = criterion(x, y)  # after the window: no synchronising call
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert torch.isfinite(value).item()


def test_watch_under_torch_compile_warns_in_the_window_then_only_computes():
    criterion = watch(nn.BCEWithLogitsLoss(), calls=2)
    compiled = torch.compile(criterion, backend="eager")
    probs, targets = torch.sigmoid(torch.randn(32)), torch.ones(32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = [compiled(probs, targets) for _ in range(4)]
    doctor = [w for w in caught if issubclass(w.category, LossDoctorWarning)]
    assert len(doctor) == 1 and "probabilities-into-bce-with-logits" in str(doctor[0].message)
    assert criterion.checked == 2
    assert torch.allclose(values[-1], nn.BCEWithLogitsLoss()(probs, targets))


def test_a_failing_check_warns_and_never_stops_training():
    criterion = watch(nn.MSELoss(), calls=3)
    with (
        mock.patch("advisor.doctor.wrapper.check_views", side_effect=RuntimeError("boom")),
        pytest.warns(LossDoctorWarning, match="could not check this call .RuntimeError: boom"),
    ):
        value = criterion(torch.ones(2), torch.zeros(2))
    assert value.item() == 1.0


def test_watch_refuses_a_bad_window_and_an_unknown_loss():
    with pytest.raises(ValueError, match="calls must be an int >= 0"):
        watch(nn.MSELoss(), calls=-1)
    with pytest.raises(TypeError, match=r"advisor\.doctor checks"):
        watch(object())
    assert not watch(nn.MSELoss(), calls=0).watching


# ------------------------------------------------------------------------------------- static: flow rules


def _static_ids(code: str) -> list[str]:
    return _ids(scan_source(code))


def test_static_same_expression_forms_and_their_columns():
    code = (
        "import torch\n"
        "from torch.nn import CrossEntropyLoss\n"
        "import torch.nn.functional as F\n"
        "a = CrossEntropyLoss()(F.softmax(x, dim=1), y)\n"
        "b = torch.nn.functional.cross_entropy(input=torch.softmax(x, 1), target=y)\n"
        "c = F.nll_loss(torch.nn.Linear(4, 3)(x), y)\n"
    )
    found = scan_source(code, "t.py")
    assert [(f.id, f.line, f.column) for f in found] == [
        ("softmax-into-cross-entropy", 4, 5),
        ("softmax-into-cross-entropy", 5, 5),
        ("nll-without-log-softmax", 6, 5),
    ]
    assert found[0].where == "t.py:4:5" and "`F.softmax(x, dim=1)`" in found[0].seen


def test_static_log_of_softmax_is_log_probabilities():
    code = (
        "import torch\nimport torch.nn.functional as F\n"
        "p = torch.softmax(x, 1)\n"
        "a = F.nll_loss(torch.log(p + 1e-8), y)\n"
        "b = F.nll_loss(p.log(), y)\n"
        "c = F.nll_loss(p, y)\n"
    )
    assert [(f.id, f.line) for f in scan_source(code)] == [("nll-without-log-softmax", 6)]


def test_static_branches_that_disagree_are_not_reported():
    code = (
        "import torch\nimport torch.nn.functional as F\n"
        "def step(x, y, train):\n"
        "    if train:\n"
        "        out = x\n"
        "    else:\n"
        "        out = torch.softmax(x, 1)\n"
        "    return F.cross_entropy(out, y)\n"
    )
    assert _static_ids(code) == []
    assert _static_ids(code.replace("out = x\n", "out = x.softmax(1)\n")) == ["softmax-into-cross-entropy"]


def test_static_rebinding_and_parameters_clear_what_a_name_held():
    code = (
        "import torch\nfrom torch import nn\n"
        "criterion = nn.CrossEntropyLoss()\n"
        "probs = torch.softmax(z, 1)\n"
        "def train(probs, y):\n"
        "    return criterion(probs, y)\n"  # a parameter, not the module-level softmax
        "def other(x, y):\n"
        "    p = torch.softmax(x, 1)\n"
        "    p = x\n"
        "    return criterion(p, y)\n"
        "def third(x, y):\n"
        "    return criterion(probs, y)\n"  # the module-level softmax: reported
    )
    assert [(f.id, f.line) for f in scan_source(code)] == [("softmax-into-cross-entropy", 12)]


def test_static_only_torch_names_count():
    code = (
        "from mylib import softmax, cross_entropy\n"
        "loss = cross_entropy(softmax(x), y)\n"
        "class CrossEntropyLoss:\n    pass\n"
        "loss2 = CrossEntropyLoss()(x.softmax(1), y)\n"
    )
    assert _static_ids(code) == []


def test_static_loss_bound_on_self_and_a_model_ending_in_softmax():
    code = (
        "from torch import nn\n"
        "class Classifier(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.net = nn.Sequential(nn.Linear(8, 3), nn.Softmax(dim=1))\n"
        "        self.loss_fn = nn.CrossEntropyLoss()\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n"
        "    def training_step(self, batch, batch_idx):\n"
        "        x, y = batch\n"
        "        return self.loss_fn(self(x), y)\n"
    )
    (finding,) = scan_source(code)
    assert finding.id == "softmax-into-cross-entropy" and finding.line == 11
    assert "Classifier, whose forward returns" in finding.seen and "nn.Softmax" in finding.seen


def test_static_tuple_returns_unpack_item_by_item():
    code = (
        "from torch import nn\n"
        "class D(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.adv = nn.Sequential(nn.Linear(8, 1), nn.Sigmoid())\n"
        "        self.aux = nn.Sequential(nn.Linear(8, 3), nn.Softmax())\n"
        "    def forward(self, x):\n"
        "        return self.adv(x), self.aux(x)\n"
        "d = D()\n"
        "bce, ce = nn.BCELoss(), nn.CrossEntropyLoss()\n"
        "valid, label = d(x)\n"
        "loss = bce(valid, v) + ce(label, y)\n"
        "other = ce(d(x)[0], y)\n"  # item 0 is a sigmoid output: also probabilities
        "fine = bce(d(x)[0], v)\n"
    )
    found = scan_source(code)
    assert [(f.id, f.line, f.column) for f in found] == [
        ("softmax-into-cross-entropy", 12, 24),
        ("softmax-into-cross-entropy", 13, 9),
    ]
    assert "item 1 of what D.forward returns" in found[0].seen


def test_static_in_file_function_and_layers_built_in_a_list():
    code = (
        "import torch.nn.functional as F\nfrom torch import nn\n"
        "def probabilities(x):\n"
        "    return F.softmax(x, dim=1)\n"
        "a = F.cross_entropy(probabilities(z), y)\n"
        "layers = [nn.Flatten()]\n"
        "for width in widths:\n"
        "    layers.append(nn.Linear(4, width))\n"
        "    layers.append(nn.ReLU())\n"
        "layers.append(nn.Linear(4, 1))\n"
        "model = nn.Sequential(*layers)\n"
        "b = nn.BCELoss()(model(x), y)\n"
        "unknown = [nn.Flatten()]\n"
        "for width in widths:\n"
        "    unknown.append(nn.Linear(4, width))\n"
        "c = nn.BCELoss()(nn.Sequential(*unknown)(x), y)\n"  # the last layer depends on the loop: unknown
    )
    assert [(f.id, f.line) for f in scan_source(code)] == [
        ("softmax-into-cross-entropy", 5),
        ("logits-into-bce", 12),
    ]


def test_static_ambiguous_classes_are_unknown():
    code = (
        "import torch\nfrom torch import nn\n"
        "if new:\n"
        "    class Net(nn.Module):\n"
        "        def forward(self, x):\n"
        "            return torch.softmax(x, 1)\n"
        "else:\n"
        "    class Net(nn.Module):\n"
        "        def forward(self, x):\n"
        "            return x\n"
        "class Wrapped(nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.softmax(x, 1)\n"
        "    def __call__(self, x):\n"
        "        return x\n"
        "a = nn.CrossEntropyLoss()(Net()(x), y)\n"
        "b = nn.CrossEntropyLoss()(Wrapped()(x), y)\n"
    )
    assert _static_ids(code) == []


def test_static_model_whose_forward_returns_two_kinds_is_unknown():
    code = (
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def forward(self, x):\n"
        "        if self.training:\n"
        "            return x\n"
        "        return torch.sigmoid(x)\n"
        "model = Net()\n"
        "loss = nn.BCEWithLogitsLoss()(model(x), y)\n"
    )
    assert _static_ids(code) == []


def test_static_comprehension_and_lambda_variables_shadow_outer_names():
    code = (
        "import torch\nimport torch.nn.functional as F\n"
        "p = torch.sigmoid(z)\n"
        "losses = [F.binary_cross_entropy_with_logits(p, t) for p, t in pairs]\n"
        "f = lambda p, t: F.binary_cross_entropy_with_logits(p, t)\n"
    )
    assert _static_ids(code) == []


def test_static_sigmoid_twice_in_one_expression_and_in_place():
    code = "import torch\nx = torch.sigmoid(torch.sigmoid(z))\ny = torch.sigmoid(w)\ny.sigmoid_()\n"
    assert [(f.id, f.line) for f in scan_source(code)] == [
        ("sigmoid-applied-twice", 2),
        ("sigmoid-applied-twice", 4),
    ]


def test_static_module_without_torch_import_is_clean_and_syntax_errors_raise():
    assert _static_ids("loss = F.cross_entropy(x.softmax(-1), y)\n") == []  # F is not known to be torch
    with pytest.raises(SyntaxError):
        scan_source("def broken(:\n")


def test_scan_paths_reads_folders_and_names_unreadable_files(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(
        "import torch.nn.functional as F\nloss = F.cross_entropy(x.softmax(-1), y)\n"
    )
    (tmp_path / "pkg" / "good.py").write_text("import torch\nx = torch.ones(2)\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "skip.py").write_text("def broken(:\n")
    (tmp_path / "broken.py").write_text("print 'python 2'\n")
    result = scan_paths([tmp_path / "pkg", tmp_path / "broken.py", tmp_path / "missing.py"])
    assert len(result.files) == 2 and _ids(result.findings) == ["softmax-into-cross-entropy"]
    assert result.errors == [
        f"{tmp_path / 'broken.py'}: line 1: Missing parentheses in call to 'print'. Did you mean print(...)? "
        "(not Python 3 source)",
        f"{tmp_path / 'missing.py'}: no such file or directory",
    ]
    assert json.loads(json.dumps(result.to_dict()))["files"] == 2


def test_static_check_imports_no_torch():
    code = (
        "import sys, advisor.doctor.static as s\n"
        "s.scan_source('import torch\\nx = 1\\n')\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------------- the CLI

runner = CliRunner()
BAD = "import torch.nn.functional as F\n\ndef step(model, x, y):\n    return F.cross_entropy(model(x).softmax(-1), y)\n"


def test_cli_doctor_clean_file_exits_0():
    result = runner.invoke(app, ["doctor", str(ROOT / "client_examples" / "train_with_top_spec.py")])
    assert result.exit_code == 0, result.output
    assert "no findings in 1 file read" in result.output


def test_cli_doctor_finding_exits_1_with_line_and_column(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(BAD)
    result = runner.invoke(app, ["doctor", str(script)])
    assert result.exit_code == 1
    assert f"{script}:4:12: error softmax-into-cross-entropy: F.cross_entropy reads" in result.output
    assert "    fix: Pass the logits" in result.output and "1 finding in 1 of 1 file read" in result.output


def test_cli_doctor_json(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(BAD)
    result = runner.invoke(app, ["doctor", str(tmp_path), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["files"] == 1 and data["errors"] == []
    (finding,) = data["findings"]
    assert (finding["id"], finding["line"], finding["column"], finding["severity"]) == (
        "softmax-into-cross-entropy",
        4,
        12,
        "error",
    )


def test_cli_doctor_unreadable_input_exits_2_with_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def broken(:\n")
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "doctor", str(broken)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {broken}: line 1: invalid syntax (not Python 3 source)"
    ]
    missing = runner.invoke(app, ["doctor", str(tmp_path / "missing.py")])
    assert missing.exit_code == 2 and "missing.py: no such file or directory" in missing.output
