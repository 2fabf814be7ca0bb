"""Train a plain PyTorch MLP on the bundled churn CSV with the loss Loss Advisor recommends.

    python client_examples/train_with_top_spec.py

1. ``advisor.recommend`` profiles the CSV and ranks configured losses with quick trial fits (a small budget
   here, so the example runs in seconds).
2. The top spec becomes a loss module with ``advisor.build_loss``; ``output_adapter`` says how many output
   units the model needs for it and how to feed the loss (a sigmoid loss takes one logit, a softmax loss two).
3. An ordinary training loop; the metric the advisor ranked by (average precision) is reported on held-out
   rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split

import advisor
from advisor.integrations import output_adapter

DATA = Path(__file__).resolve().parent / "data" / "churn.csv"
TARGET = "churned"


def load_churn(path: Path = DATA) -> tuple[np.ndarray, np.ndarray]:
    """Features (numeric, medians for missing cells, one-hot categories) and 0/1 labels."""
    frame = pd.read_csv(path)
    labels = frame.pop(TARGET).to_numpy(dtype=np.int64)
    frame = frame.drop(columns=["customer_id", "country"])  # an ID and a constant column
    numeric = frame.select_dtypes("number")
    numeric = numeric.fillna(numeric.median())
    categorical = pd.get_dummies(frame.select_dtypes(exclude="number"), dtype=np.float32)
    return np.hstack([numeric.to_numpy(np.float32), categorical.to_numpy(np.float32)]), labels


def positive_probability(predictions: dict[str, torch.Tensor]) -> np.ndarray:
    proba = predictions["proba"]
    proba = proba[:, 1] if proba.dim() == 2 and proba.shape[1] == 2 else proba.reshape(-1)
    return proba.detach().numpy()


def main(epochs: int = 10, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    result = advisor.recommend(str(DATA), target=TARGET, epochs=5, repeats=2, max_rows=1000, budget_s=60)
    head = result.heads[0]
    top = head.top
    print(f"task: {head.type} head '{head.head}', ranked by {head.metric}")
    print(f"recommended loss: {top.spec.to_json()}")
    if top.post_hoc is not None:
        print(f"at prediction time: {top.post_hoc.describe()} (advisor.apply_recipe)")

    x, y = load_churn()
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = torch.tensor((x_train - mean) / std), torch.tensor((x_val - mean) / std)
    y_train, y_val = torch.tensor(y_train), torch.tensor(y_val)

    loss_fn = advisor.build_loss(top.spec)
    adapter = output_adapter(result.task.heads[0], top.spec)
    model = torch.nn.Sequential(
        torch.nn.Linear(x_train.shape[1], 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, adapter.out_dim),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x_train, y_train), batch_size=128, shuffle=True
    )
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for xb, yb in batches:
            optimizer.zero_grad()
            loss = loss_fn(adapter.loss_input(model(xb)), adapter.loss_target(yb))
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
        if epoch % 2 == 0 or epoch == epochs:
            model.eval()
            with torch.no_grad():
                score = average_precision_score(y_val, positive_probability(adapter.predict(model(x_val))))
            print(f"epoch {epoch:2d}: train loss {total / len(x_train):.4f}, validation AP {score:.4f}")
    base_rate = float(y_val.float().mean())
    print(f"final validation average_precision: {score:.4f} (a random ranking scores {base_rate:.3f})")
    return {"spec": top.spec, "average_precision": score, "base_rate": base_rate}


if __name__ == "__main__":
    main()
