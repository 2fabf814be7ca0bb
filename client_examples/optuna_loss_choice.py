"""An Optuna study whose loss choice is Loss Advisor's top-k losses, searched together with the learning rate.

    pip install optuna
    python client_examples/optuna_loss_choice.py

The advisor runs once, before the study: it narrows dozens of possible losses to a few configured ones, and
``optuna_loss_choice`` offers those as one categorical parameter (short stable labels, since Optuna's
choices must be primitive). Each choice is a spec and the prediction-time recipe its evidence was measured
with: inside the objective the spec becomes the loss and the recipe (when there is one) turns the logits into
predictions; after the study, ``chosen_loss(study.best_trial)`` gives the winner back from the trial alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import torch
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split

import advisor
from advisor.integrations import chosen_loss, loss_choices, optuna_loss_choice, output_adapter

DATA = Path(__file__).resolve().parent / "data" / "churn.csv"
TARGET = "churned"


def load_churn(path: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """Features (numeric, medians for missing cells, one-hot categories) and 0/1 labels."""
    frame = pd.read_csv(path)
    labels = frame.pop(TARGET).to_numpy(dtype=np.int64)
    frame = frame.drop(columns=["customer_id", "country"])
    numeric = frame.select_dtypes("number")
    numeric = numeric.fillna(numeric.median())
    categorical = pd.get_dummies(frame.select_dtypes(exclude="number"), dtype=np.float32)
    return np.hstack([numeric.to_numpy(np.float32), categorical.to_numpy(np.float32)]), labels


def main(n_trials: int = 6, top_k: int = 3, epochs: int = 6) -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = advisor.recommend(str(DATA), target=TARGET, epochs=5, repeats=2, max_rows=1000, budget_s=60)
    head = result.heads[0]
    offered = loss_choices(result, top_k=top_k)  # what optuna_loss_choice offers: label -> spec and recipe
    print(f"the advisor's top {len(offered)} losses for head '{head.head}' ({head.metric}):")
    for label, choice in offered.items():
        recipe = f", then {choice.recipe.describe()}" if choice.recipe else ""
        print(f"  {label}: {choice.spec.to_json()}{recipe}")

    x, y = load_churn()
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = torch.tensor((x_train - mean) / std), torch.tensor((x_val - mean) / std)
    y_train = torch.tensor(y_train)

    def objective(trial: optuna.Trial) -> float:
        choice = optuna_loss_choice(trial, result, top_k=top_k)  # one of the advisor's top-k losses
        spec = choice.spec
        lr = trial.suggest_float("lr", 3e-4, 1e-2, log=True)
        hidden = trial.suggest_categorical("hidden", [32, 64])
        torch.manual_seed(trial.number)
        loss_fn = advisor.build_loss(spec)
        adapter = output_adapter(result.task.heads[0], spec)  # output units and input format of that loss
        model = torch.nn.Sequential(
            torch.nn.Linear(x_train.shape[1], hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, adapter.out_dim),
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(epochs):
            for rows in torch.randperm(len(x_train)).split(128):
                optimizer.zero_grad()
                loss = loss_fn(adapter.loss_input(model(x_train[rows])), adapter.loss_target(y_train[rows]))
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            logits = model(x_val)
            # a threshold or logit adjustment leaves the ranking (average precision) alone; a temperature not
            proba = (
                advisor.apply_recipe(choice.recipe, logits, output="probabilities")
                if choice.recipe is not None and choice.recipe.ready
                else adapter.predict(logits)["proba"]
            )
        positive = proba[:, 1] if proba.dim() == 2 and proba.shape[1] == 2 else proba.reshape(-1)
        return float(average_precision_score(y_val, positive.numpy()))

    study = optuna.create_study(
        direction="maximize" if head.higher_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    study.optimize(objective, n_trials=n_trials)

    for trial in study.trials:
        print(f"trial {trial.number}: {trial.params['loss']:<28} lr={trial.params['lr']:.2e} "
              f"hidden={trial.params['hidden']:<3} AP={trial.value:.4f}")  # fmt: skip
    best = chosen_loss(study.best_trial)  # from the trial alone: its chosen spec and recipe are stored on it
    print(f"best trial: #{study.best_trial.number}, AP {study.best_value:.4f}, params {study.best_params}")
    print(f"best loss: {best.spec.to_json()}" + (f", then {best.recipe.describe()}" if best.recipe else ""))
    return {"study": study, "best": best, "recommendation": result}


if __name__ == "__main__":
    main()
