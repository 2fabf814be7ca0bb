"""The command line: catalog listing, JSON output, one entry, spec checks, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import advisor


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "advisor", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def test_losses_json_lists_every_name_with_schema_and_reference():
    result = _run("losses", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [entry["name"] for entry in entries] == advisor.loss_names()
    for entry in entries:
        assert entry["heads"] and entry["reference"]
        assert entry["params_schema"]["type"] == "object"
    focal = next(entry for entry in entries if entry["name"] == "focal")
    assert focal["params_schema"]["properties"]["gamma"]["default"] == 2.0


def test_losses_table_and_one_entry():
    table = _run("losses")
    assert table.returncode == 0 and "Loss catalog (35 losses)" in table.stdout
    entry = _run("losses", "tversky")
    assert entry.returncode == 0
    assert "fp_weight" in entry.stdout and "Salehi" in entry.stdout and "TP + a FP + b FN" in entry.stdout


def test_unknown_loss_exits_2_with_one_line():
    result = _run("losses", "tverskyy")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "did you mean 'tversky'" in result.stderr


def test_spec_check_normalizes_and_reports_bad_specs(tmp_path):
    good = _run("spec", "check", "-", stdin='{"loss": "huber"}')
    assert good.returncode == 0
    assert json.loads(good.stdout)["params"] == {"delta": 1.0, "reduction": "mean"}
    bad = _run("spec", "check", "-", stdin='{"loss": "huber", "params": {"delta": 0}}')
    assert bad.returncode == 2 and "params.delta" in bad.stderr and "greater than 0" in bad.stderr
    missing = _run("spec", "check", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_spec_schema_is_json_schema():
    result = _run("spec", "schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "LossSpec"


def test_usage_error_exits_2():
    assert _run("losses", "--no-such-flag").returncode == 2
