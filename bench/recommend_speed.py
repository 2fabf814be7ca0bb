"""End to end: ``recommend()`` on a 100,000-row, 32-column CSV with default settings (target: under 30 s on
two cores). Run from the repository root: ``python -m bench.recommend_speed``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.core import recommend


def write_csv(path: Path, rows: int = 100_000, columns: int = 32, seed: int = 0) -> None:
    """30 numeric and 2 categorical features; an imbalanced 5-class target ``label``."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, columns - 2))
    frame = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(columns - 2)])
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    frame["plan"] = rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1])
    score = numeric[:, :5] @ rng.normal(size=5) + (frame["plan"] == "pro") * 1.5
    cut = np.quantile(score, [0.5, 0.8, 0.93, 0.98])
    frame["label"] = np.searchsorted(cut, score)
    frame.to_csv(path, index=False)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_csv(path)
        start = time.perf_counter()
        result = recommend(str(path), target="label")
        elapsed = time.perf_counter() - start
    head = result.heads[0]
    top = head.candidates[0]
    print(f"recommend() on 100,000 x 32 CSV, default settings: {elapsed:.1f} s (target < 30 s)")
    print(f"stages: {result.timings}")
    print(
        f"trials: {head.epochs_completed} epochs, stopped by {head.stopped_by}, {head.train_rows} training rows, "
        f"{len(head.candidates)} candidates x {head.repeats} repeats"
    )
    print(
        f"top: {top.spec.loss} ({top.rule_id}) {head.metric} {top.evidence.mean:.4f} +/- {top.evidence.std:.4f}"
    )


if __name__ == "__main__":
    main()
