"""A two-head model (a class head and a regression head) trained with the recommended ``multi_task`` spec.

    python client_examples/multi_head_training.py

The data are generated: eight features, an imbalanced three-class ``segment`` and a numeric ``spend`` on a
much larger scale. ``advisor.recommend`` ranks losses for each head and composes ``multi_task`` specs over
the heads' winners; this example takes the one with uncertainty weighting, whose learned log-variances
balance the cross-entropy-like and squared-error-like terms. Those weights are module parameters of the
loss, so they go into the optimizer beside the model's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import advisor
from advisor.integrations import output_adapter

HEADS = ("segment", "spend")


def make_data(rows: int = 1600, seed: int = 0) -> pd.DataFrame:
    """Eight features, a 3-class label (about 70/22/8 %) and a numeric target around 40 +/- 12."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 8)).astype(np.float32)
    logits = x[:, :3] * [1.5, 1.2, 1.8] + [1.6, 0.3, -0.9]
    segment = (logits + rng.gumbel(size=logits.shape)).argmax(1)
    spend = 40 + 8 * x[:, 3] - 5 * x[:, 4] + 6 * (segment == 2) + rng.normal(scale=3.0, size=rows)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    frame["segment"], frame["spend"] = segment, spend.round(2)
    return frame


class TwoHeadNet(torch.nn.Module):
    def __init__(self, inputs: int, out_dims: dict[str, int], hidden: int = 64) -> None:
        super().__init__()
        self.trunk = torch.nn.Sequential(
            torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden), torch.nn.ReLU()
        )
        self.heads = torch.nn.ModuleDict(
            {name: torch.nn.Linear(hidden, dim) for name, dim in out_dims.items()}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        shared = self.trunk(x)
        return {name: head(shared) for name, head in self.heads.items()}


def main(epochs: int = 30, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    frame = make_data(seed=seed)
    result = advisor.recommend(frame, target=list(HEADS), epochs=5, repeats=2, max_rows=1000, budget_s=60)
    for head in result.heads:
        print(f"head '{head.head}' ({head.type}): winner {head.top.spec.loss}")
    by_scheme = {c.spec.params["weighting"]["scheme"]: c.spec for c in result.multi_task}
    print(f"multi_task specs offered: {', '.join(by_scheme)}")
    spec = by_scheme.get("uncertainty", result.best().spec)  # heads on different scales: learned weights
    print(f"training with: {spec.to_json()}")

    loss_fn = advisor.build_loss(spec)
    head_specs = spec.params["heads"]
    adapters = {name: output_adapter(result.task.head(name), head_specs[name]) for name in HEADS}

    features = torch.tensor(frame[[f"f{i}" for i in range(8)]].to_numpy(np.float32))
    train, val = torch.arange(0, 1200), torch.arange(1200, len(frame))
    # Train the regression head on a standardized target, as the advisor's trials did; predictions are mapped
    # back to the target's units below. (Losses with a variance output need this far more than MSE does.)
    spend = torch.tensor(frame["spend"].to_numpy(np.float32))
    shift, scale = float(spend[train].mean()), float(spend[train].std())
    targets = {"segment": torch.tensor(frame["segment"].to_numpy(np.int64)), "spend": (spend - shift) / scale}

    model = TwoHeadNet(features.shape[1], {name: adapter.out_dim for name, adapter in adapters.items()})
    # The uncertainty weighting's log-variances are parameters of the loss: optimize them with the model.
    optimizer = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=3e-3)

    for epoch in range(1, epochs + 1):
        model.train()
        for rows in train[torch.randperm(len(train))].split(64):
            optimizer.zero_grad()
            outputs = model(features[rows])
            total = loss_fn(
                {name: adapters[name].loss_input(outputs[name]) for name in HEADS},
                {name: adapters[name].loss_target(targets[name][rows]) for name in HEADS},
            )
            total.backward()
            optimizer.step()
        loss_fn.end_epoch()  # needed by DWA weighting, harmless for the others
        if epoch % 10 == 0 or epoch == epochs:
            head_losses = ", ".join(
                f"{n} {v:.3f}" for n, v in zip(HEADS, loss_fn.last_losses.tolist(), strict=True)
            )
            print(f"epoch {epoch:2d}: last batch total {total.item():.3f} ({head_losses})")

    model.eval()
    with torch.no_grad():
        outputs = model(features[val])
    predicted = adapters["segment"].predict(outputs["segment"])["proba"].argmax(1)
    truth = targets["segment"][val]
    recalls = [float((predicted[truth == c] == c).float().mean()) for c in truth.unique()]
    balanced_accuracy = sum(recalls) / len(recalls)
    value = adapters["spend"].predict(outputs["spend"])["value"] * scale + shift
    rmse = float(((value - spend[val]) ** 2).mean().sqrt())
    print(f"final validation: segment balanced_accuracy {balanced_accuracy:.3f}, spend rmse {rmse:.3f}")
    weights = {}
    if hasattr(loss_fn, "log_vars"):
        weights = {
            n: round(float(torch.exp(-s)), 4) for n, s in zip(HEADS, loss_fn.log_vars.detach(), strict=True)
        }
        print(f"learned head weights exp(-s): {weights}")
    return {"spec": spec, "balanced_accuracy": balanced_accuracy, "rmse": rmse, "weights": weights}


if __name__ == "__main__":
    main()
