"""The runnable examples in client_examples/ (each main() in-process, one as a script) and the
advisor.integrations helpers they rely on."""

from __future__ import annotations

import builtins
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import advisor
from advisor.core import recommend
from advisor.integrations import (
    IntegrationError,
    MissingDependencyError,
    build_chosen_loss,
    choice_label,
    chosen_loss,
    loss_choices,
    optuna_loss_choice,
    spec_label,
    top_candidates,
    top_choices,
)
from advisor.recommendation import LossChoice

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "client_examples"
QUICK = {"budget_s": 30.0, "epochs": 3, "repeats": 2, "max_rows": 500}


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def churn():
    return recommend(str(EXAMPLES / "data" / "churn.csv"), target="churned", **QUICK)


def test_train_with_top_spec(capsys):
    out = _example("train_with_top_spec").main(epochs=6)
    printed = capsys.readouterr().out
    assert out["spec"].loss in advisor.loss_names()
    assert f"recommended loss: {out['spec'].to_json()}" in printed
    assert f"final validation average_precision: {out['average_precision']:.4f}" in printed
    # a trained model ranks churners far better than chance (the positive rate)
    assert out["base_rate"] == pytest.approx(0.119, abs=0.01)
    assert out["average_precision"] > 2 * out["base_rate"]


def test_optuna_study_chooses_among_the_top_specs(capsys):
    optuna = pytest.importorskip("optuna")
    out = _example("optuna_loss_choice").main(n_trials=4, top_k=3, epochs=3)
    printed = capsys.readouterr().out
    study, result = out["study"], out["recommendation"]
    offered = loss_choices(result, top_k=3)
    assert len(offered) == 3
    trials = study.trials
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.params["loss"] for t in trials} <= set(offered)
    assert all(0.0 < t.value <= 1.0 for t in trials)
    assert out["best"] == offered[study.best_params["loss"]]
    assert study.best_trial.user_attrs["loss_choice"] == out["best"].model_dump(mode="json")
    assert f"best loss: {out['best'].spec.to_json()}" in printed


def test_multi_head_training_learns_uncertainty_weights(capsys):
    out = _example("multi_head_training").main(epochs=12)
    printed = capsys.readouterr().out
    spec = out["spec"]
    assert spec.loss == "multi_task" and spec.params["weighting"]["scheme"] == "uncertainty"
    assert set(spec.params["heads"]) == {"segment", "spend"}
    # the log-variances are loss parameters the optimizer moved away from their start (weight exp(-0) = 1)
    assert set(out["weights"]) == {"segment", "spend"}
    assert all(abs(weight - 1.0) > 0.05 for weight in out["weights"].values())
    assert out["balanced_accuracy"] > 0.45  # chance is 1/3
    assert out["rmse"] < 6.0  # the target's spread is about 12, its noise 3
    assert "learned head weights" in printed and "training with:" in printed


def test_an_example_runs_as_a_script(tmp_path):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "train_with_top_spec.py")],
        cwd=tmp_path,  # the example finds its data next to itself, not in the working directory
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "final validation average_precision:" in done.stdout


# ------------------------------------------------------------------------------ advisor.integrations


def test_top_choices_are_distinct_and_in_rank_order(churn):
    candidates = churn.heads[0].candidates
    every = top_candidates(churn, k=len(candidates))
    keys = [c.choice().model_dump_json() for c in every]
    assert len(set(keys)) == len(keys) == len({c.choice().model_dump_json() for c in candidates})
    assert [c.rank for c in every] == sorted(c.rank for c in every)
    assert every[0] is candidates[0]
    assert top_choices(churn, k=2) == [c.choice() for c in every[:2]]
    assert top_choices(churn, head="churned", k=1) == [
        LossChoice(spec=candidates[0].spec, recipe=candidates[0].post_hoc)
    ]
    with pytest.raises(IntegrationError, match="no head named 'nope'"):
        top_choices(churn, head="nope")
    with pytest.raises(IntegrationError, match="k"):
        top_choices(churn, k=0)


def test_a_recipe_stays_a_choice_of_its_own():
    """'cross_entropy + logit adjustment' must not collapse into a plain cross-entropy choice."""
    result = recommend({"heads": [{"type": "multiclass", "class_histogram": [900, 90, 10]}]}, trials=False)
    choices = list(loss_choices(result, top_k=20).items())
    adjusted = [
        (label, c) for label, c in choices if c.recipe is not None and c.recipe.kind == "logit_adjustment"
    ]
    plain = [c for _, c in choices if c.recipe is None and c.spec == adjusted[0][1].spec]
    assert adjusted and plain, [label for label, _ in choices]
    label, choice = adjusted[0]
    assert label.startswith("cross_entropy+logit_adjustment-") and label != spec_label(choice.spec)
    assert choice.recipe.class_priors == pytest.approx([901 / 1003, 91 / 1003, 11 / 1003])
    assert chosen_loss({"loss": label}, result) == choice
    assert chosen_loss({"loss": choice.model_dump_json()}) == choice


def test_labels_are_short_stable_and_distinct(churn):
    choices = loss_choices(churn, top_k=5)
    assert all(isinstance(label, str) and len(label) < 48 for label in choices)
    assert list(choices) == [choice_label(c) for c in top_choices(churn, k=5)]
    spec = top_choices(churn, k=1)[0].spec
    assert spec_label(spec) == spec_label(spec.to_json()) == spec_label(spec.model_dump())
    assert spec_label({"loss": "focal"}) != spec_label({"loss": "focal", "params": {"gamma": 3.0}})
    as_json = loss_choices(churn, top_k=2, labels="json")
    assert [LossChoice.model_validate_json(text) for text in as_json] == list(as_json.values())


def test_chosen_loss_from_params_and_trials(churn):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    top = top_choices(churn, k=3)
    label = choice_label(top[1])
    assert chosen_loss({"loss": label}, churn) == top[1]
    assert chosen_loss({"loss": top[2].model_dump_json()}) == top[2]  # JSON text needs no recommendation
    with pytest.raises(IntegrationError, match="short label"):
        chosen_loss({"loss": label})
    with pytest.raises(IntegrationError, match="names no choice"):
        chosen_loss({"loss": "focal-00000000"}, churn)
    with pytest.raises(IntegrationError, match="no parameter 'loss'"):
        chosen_loss({"lr": 0.1}, churn)
    with pytest.raises(IntegrationError, match="expected"):
        chosen_loss({"loss": '{"loss": "focal"}'})

    fixed = optuna.trial.FixedTrial({"loss": label})
    assert optuna_loss_choice(fixed, churn) == top[1]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(lambda t: float(len(build_chosen_loss(t, churn, name="choice").spec().loss)), n_trials=5)
    assert {t.params["choice"] for t in study.trials} <= set(loss_choices(churn))
    best = study.best_trial
    assert (
        build_chosen_loss(best, name="choice").spec() == chosen_loss(best.params, churn, name="choice").spec
    )


def test_multi_head_choices_default_to_multi_task_specs():
    task = {
        "heads": [
            {"name": "a", "type": "binary", "class_histogram": [90, 10]},
            {"name": "b", "type": "regression", "target": {"mean": 0.0, "variance": 1.0}},
        ]
    }
    result = recommend(task, trials=False)
    assert [c.spec for c in top_choices(result, k=5)] == [c.spec for c in result.multi_task]
    assert all(label.startswith("multi_task-") for label in loss_choices(result))
    assert top_choices(result, head="b", k=1) == [result.head("b").top.choice()]


def test_missing_optuna_raises_a_clear_import_error(churn, monkeypatch):
    real_import = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna" or name.startswith("optuna."):
            raise ImportError("No module named 'optuna'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(ImportError, match="pip install optuna") as caught:
        optuna_loss_choice(object(), churn)
    assert isinstance(caught.value, MissingDependencyError)
    assert top_choices(churn, k=1)  # the rest works without it
