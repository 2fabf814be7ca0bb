"""The command line: catalog listing, JSON output, one entry, spec checks, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

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
    assert table.returncode == 0 and f"Loss catalog ({len(advisor.loss_names())} losses)" in table.stdout
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


def test_recommend_on_the_bundled_csv_writes_json_and_specs(tmp_path):
    out = tmp_path / "specs.json"
    result = _run(
        "recommend", "client_examples/data/churn.csv", "--target", "churned", "--budget", "20", "--epochs", "3",
        "--repeats", "2", "--json", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    recommendation = json.loads(result.stdout)
    head = recommendation["heads"][0]
    assert head["head"] == "churned" and head["evidence_source"] == "data"
    specs = json.loads(out.read_text())
    assert specs["churned"] == {
        "spec": head["candidates"][0]["spec"],
        "recipe": head["candidates"][0]["post_hoc"],
    }
    advisor.build_loss(specs["churned"]["spec"])


def test_recommend_table_and_task_json_without_trials(tmp_path):
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"heads": [{"type": "multiclass", "class_histogram": [900, 90, 10]}]}))
    result = _run("recommend", "--task-json", str(task), "--no-trials")
    assert result.returncode == 0, result.stderr
    assert "ranked by balanced_accuracy" in result.stdout and "rules only" in result.stdout
    lines = result.stdout.splitlines()
    assert lines[lines.index(next(x for x in lines if "ranked by" in x)) + 1].startswith(
        "Ranked by the rules alone"
    )
    assert "! No trial fits ran" in result.stdout
    assert "Train with: advisor.build_loss(" in result.stdout
    described = _run("describe", str(task))
    assert described.returncode == 0 and "imbalance=severe" in described.stdout


def test_recommend_usage_and_input_errors_exit_2_with_one_line(tmp_path):
    both = _run("recommend", "client_examples/data/churn.csv", "--task-json", "x.json")
    assert both.returncode == 2 and "not both or neither" in both.stderr
    bad_metric = _run(
        "recommend", "client_examples/data/churn.csv", "--target", "churned", "--metric", "dice"
    )
    assert bad_metric.returncode == 2 and bad_metric.stderr.count("\n") == 1 and "metric" in bad_metric.stderr
    no_target = _run("recommend", "client_examples/data/churn.csv", "--no-trials")
    assert no_target.returncode == 2 and "--target" in no_target.stderr


def test_ctrl_c_stops_trials_cleanly_and_keeps_the_result(tmp_path):
    import signal
    import time

    task = tmp_path / "task.json"
    task.write_text(json.dumps({"heads": [{"type": "multiclass", "class_histogram": [500, 200, 100]}]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "advisor", "recommend", "--task-json", str(task), "--epochs", "1000",
         "--budget", "120", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Interrupt once trials are under way: 8 s after torch is mapped in. A fixed delay from the start failed on
    # a loaded machine, where torch alone took 10 s to map; the rest of the imports take seconds more there.
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 120
    while "libtorch" not in maps.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(8)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr
    head = json.loads(stdout)["heads"][0]
    assert head["stopped_by"] == "cancelled" and head["candidates"][0]["evidence"] is not None


def test_recommend_writes_a_self_contained_report(tmp_path):
    report = tmp_path / "report.html"
    result = _run(
        "recommend", "client_examples/data/churn.csv", "--target", "churned", "--epochs", "2", "--repeats", "2",
        "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = report.read_text()
    assert "churned" in page and "data:image/png;base64," in page and "advisor.build_loss(" in page
    assert f"Report written to {report}" in result.stdout


def test_recommend_ranks_under_a_stated_training_protocol():
    result = _run(
        "recommend", "client_examples/data/churn.csv", "--target", "churned", "--repeats", "2",
        "--training", "epochs=4,early_stopping_patience=2,lr=0.01", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    recommendation = json.loads(result.stdout)
    assert recommendation["heads"][0]["protocols"] == ["early stopping with patience 2 (at most 4 epochs)"]
    assert recommendation["settings"]["training"] == {"epochs": 4, "early_stopping_patience": 2, "lr": 0.01}


def test_a_bad_training_protocol_is_one_line_naming_the_field():
    for value, field in (
        ("epochs=0", "training.epochs"),
        ("patience", "training"),
        ("speed=3", "training.speed"),
    ):
        result = _run("recommend", "client_examples/data/churn.csv", "--training", value)
        assert result.returncode == 2 and field in result.stderr, (value, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def _one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and all(fragment in lines[0] for fragment in fragments), result.stderr


def test_unreadable_inputs_are_one_line_errors_not_tracebacks(tmp_path):
    binary = tmp_path / "spec.json"
    binary.write_bytes(bytes(range(128, 256)) * 8)
    _one_line_error(_run("spec", "check", str(binary)), "not UTF-8 text")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _one_line_error(_run("spec", "check", str(deep)), "nested deeper")
    _one_line_error(_run("describe", str(deep)), "nested deeper")
    excel = tmp_path / "data.csv"
    excel.write_bytes(b"PK\x03\x04" + bytes(500))
    _one_line_error(
        _run("recommend", str(excel), "--target", "y", "--no-trials"), "Excel", "pandas.read_excel"
    )


def test_an_out_path_in_a_missing_folder_is_refused_before_any_work(tmp_path):
    churn = "client_examples/data/churn.csv"
    missing = tmp_path / "missing" / "specs.json"
    _one_line_error(_run("recommend", churn, "--target", "churned", "--out", str(missing)), "no such folder")


def test_version_and_short_help():
    import re
    from pathlib import Path

    version = re.search(r'^version = "([^"]+)"', Path("pyproject.toml").read_text(), re.MULTILINE).group(1)
    result = _run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"advisor-cli {version}"
    short = _run("recommend", "-h")
    assert short.returncode == 0 and "--target" in short.stdout


def test_decimals_show_the_smallest_spread_with_two_significant_digits():
    from advisor.explain import decimals

    assert decimals([0.0647, 0.00298], [0.37, 0.35]) == 4  # 0.0030 keeps two digits
    assert decimals([310.0], [12345.0]) == 0
    assert decimals([None, 0.0], [0.5]) == 4  # nothing spreads: 4 significant digits of the mean
    assert decimals([], []) == 4


def test_the_ranking_fits_80_columns_and_opens_with_the_verdict():
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "advisor", "recommend", "client_examples/data/churn.csv", "--target", "churned",
         "--repeats", "2", "--epochs", "3"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    hand_off = [line for line in lines if line.startswith(("Train with:", "Predict with:"))]
    assert hand_off and all(len(line) <= 80 for line in lines if line not in hand_off)  # hand-offs soft-wrap
    title = next(i for i, line in enumerate(lines) if line.startswith("Head 'churned'"))
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("# loss"))
    verdict = " ".join(lines[title + 1 : header])
    assert ("tie" in verdict or "beats" in verdict or "is best" in verdict) and "default bce" in verdict
    assert "bce pos_weight=7.4" in done.stdout  # the parameter that tells the two bce rows apart
    assert "tie: candidates with the same number" in done.stdout  # the legend
    rows = [line for line in lines[header:] if re.match(r"^\s+\d+ ", line)]
    assert len(rows) >= 5 and all(re.search(r"\d\.\d{3,} \(", row) for row in rows if "diverged" not in row)
    assert len(lines) < 60  # one line per candidate plus its reason, not 75 wrapped lines for 9 rows


def test_the_hand_off_lines_carry_the_recipe_with_its_tuned_values():
    from advisor.display import hand_off_lines
    from advisor.recipes import Recipe
    from advisor.recommendation import RankedCandidate

    recipe = Recipe(kind="threshold", threshold=0.31, activation="sigmoid")
    candidate = RankedCandidate(
        rank=1, head="y", spec=advisor.normalize_spec({"loss": "bce"}), post_hoc=recipe, prior=0.5, score=1.0,
        tie_group=1, rule_id="r", title="t", rationale="r", references=[],
    )  # fmt: skip
    train, predict = hand_off_lines(candidate)
    assert train == f"Train with: advisor.build_loss({candidate.spec.to_json()})"
    shown = predict.removeprefix("Predict with: advisor.apply_recipe(").split(", logits)")[0]
    assert Recipe.model_validate_json(shown) == recipe and "p >= 0.31" in predict
