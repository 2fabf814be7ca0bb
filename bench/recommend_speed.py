"""End to end: ``recommend()`` on a 100,000-row, 32-column CSV with default settings (targets: under 30 s on
two cores, issue 4; no slower than 11 s, issue 10). Run from the repository root:
``python -m bench.recommend_speed``.

Budget cuts (issue 10): ``--classes 200 --budget 15 --epochs 30`` or ``--columns 500 --budget 15 --epochs 30``
print how many of the epochs the time cap let the trials complete.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from advisor.core import recommend


def write_csv(path: Path, rows: int = 100_000, columns: int = 32, seed: int = 0, classes: int = 5) -> None:
    """Numeric features and 2 categorical ones; an imbalanced target ``label`` (5 classes: 50/30/13/5/2%,
    more classes: quantile bins of a geometric share each)."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, columns - 2))
    frame = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(columns - 2)])
    frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
    frame["plan"] = rng.choice(["basic", "plus", "pro"], rows, p=[0.6, 0.3, 0.1])
    score = numeric[:, :5] @ rng.normal(size=5) + (frame["plan"] == "pro") * 1.5
    if classes == 5:
        edges = [0.5, 0.8, 0.93, 0.98]
    else:
        shares = 0.97 ** np.arange(classes)
        edges = list(np.cumsum(shares / shares.sum())[:-1])
    label = np.searchsorted(np.quantile(score, edges), score)
    # Many integer values would profile as a count target: name the classes.
    frame["label"] = label if classes == 5 else np.char.add("c", label.astype(str))
    frame.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=32)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--budget", type=float, default=None, help="budget_s (default: recommend's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: recommend's)")
    args = parser.parse_args()
    options = {k: v for k, v in (("budget_s", args.budget), ("epochs", args.epochs)) if v is not None}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_csv(path, args.rows, args.columns, classes=args.classes)
        start = time.perf_counter()
        result = recommend(str(path), target="label", cache=False, **options)  # measured, never cached
        elapsed = time.perf_counter() - start
    head = result.heads[0]
    top = head.candidates[0]
    setting = ", ".join(f"{k}={v}" for k, v in options.items()) or "default settings"
    print(
        f"recommend() on {args.rows:,} x {args.columns} CSV, {args.classes} classes, {setting}: {elapsed:.1f} s"
    )
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
