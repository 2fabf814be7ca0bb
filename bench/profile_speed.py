"""Speed of :func:`advisor.profile` on generated CSVs.

1. A 100,000-row, 30-column CSV (numeric and categorical columns, an ID, missing cells, a regression target):
   the median of 3 timed runs against the 3 s target.
2. A ~1,000,000-row CSV of the same shape profiled with ``max_rows=200_000``: its time and its peak memory,
   measured in a fresh subprocess (``resource.getrusage`` peak RSS, with the RSS after imports for reference)
   so that generating the file does not count.

Run from the repository root: ``python -m bench.profile_speed`` (``--skip-large`` for step 1 only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_SECONDS = 3.0
SMALL_ROWS = 100_000
LARGE_ROWS = 1_000_000
LARGE_MAX_ROWS = 200_000
N_NUMERIC = 22
N_CATEGORICAL = 6
WRITE_CHUNK_ROWS = 100_000
REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs in the subprocess: profile the large file, report wall time and memory as JSON on stdout.
_LARGE_RUN = """
import json, resource, sys, time
from advisor.profiling import profile
import sklearn.linear_model, scipy.stats  # imported up front so the baseline RSS includes them
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
task = profile(sys.argv[1], target="y", max_rows=int(sys.argv[2]))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_after_imports_kb": before, "peak_rss_kb": peak,
                  "n_samples": task.n_samples, "notes": task.notes}))
"""


def _chunk(rows: int, start: int, rng: np.random.Generator) -> pd.DataFrame:
    """Rows ``start .. start + rows`` of the benchmark table: 30 columns, the target ``y`` last.

    Parameters
    ----------
    rows : int
        Rows in this chunk.
    start : int
        Index of the first row (the ID column counts from it).
    rng : numpy.random.Generator
    """
    numeric = rng.normal(size=(rows, N_NUMERIC))
    columns: dict[str, np.ndarray | list[str]] = {"row_id": np.arange(start, start + rows)}
    for index in range(N_NUMERIC):
        values = np.round(numeric[:, index] * (index + 1), 3)
        values[rng.random(rows) < 0.02] = np.nan  # a few missing cells in every numeric column
        columns[f"num_{index}"] = values
    levels = [[f"level_{index}_{level}" for level in range(3 + 5 * index)] for index in range(N_CATEGORICAL)]
    for index, names in enumerate(levels):
        columns[f"cat_{index}"] = np.take(names, rng.integers(0, len(names), rows))
    noise = rng.standard_t(3, rows) * (1 + 0.5 * np.abs(numeric[:, 0]))
    columns["y"] = np.round(numeric[:, :5] @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + noise, 4)
    return pd.DataFrame(columns)


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Write the benchmark table in chunks (so the large file never sits in memory whole)."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, WRITE_CHUNK_ROWS):
        frame = _chunk(min(WRITE_CHUNK_ROWS, rows - start), start, rng)
        frame.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)


def time_small(directory: Path, repeats: int = 3) -> list[float]:
    """Seconds of each of ``repeats`` profiles of the 100,000-row CSV (after one untimed warm-up)."""
    from advisor.profiling import profile

    path = directory / "small.csv"
    write_csv(path, SMALL_ROWS)
    profile(path, target="y")  # warm-up: imports of scikit-learn and scipy are not profiling time
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        task = profile(path, target="y")
        seconds.append(time.perf_counter() - start)
    print(
        f"small CSV: {SMALL_ROWS:,} rows x {task.n_features} encoded features, {path.stat().st_size / 1e6:.1f} MB"
    )
    return seconds


def time_large(directory: Path) -> dict:
    """Profile the ~1,000,000-row CSV with ``max_rows=200_000`` in a fresh process; time and memory."""
    path = directory / "large.csv"
    write_csv(path, LARGE_ROWS, seed=1)
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _LARGE_RUN, str(path), str(LARGE_MAX_ROWS)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=REPO_ROOT,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["file_mb"] = path.stat().st_size / 1e6
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="only the 100,000-row timing")
    arguments = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}, pandas {pd.__version__}")
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        seconds = time_small(directory)
        median = statistics.median(seconds)
        runs = ", ".join(f"{value:.2f}" for value in seconds)
        verdict = "meets" if median < TARGET_SECONDS else "MISSES"
        print(
            f"profile(): median {median:.2f} s of 3 runs ({runs}); target {TARGET_SECONDS:.0f} s: {verdict}"
        )
        if arguments.skip_large:
            return
        large = time_large(directory)
        print(
            f"large CSV: {LARGE_ROWS:,} rows, {large['file_mb']:.0f} MB, max_rows={LARGE_MAX_ROWS:,}: "
            f"{large['seconds']:.2f} s; peak RSS {large['peak_rss_kb'] / 1024:.0f} MiB "
            f"(after imports {large['rss_after_imports_kb'] / 1024:.0f} MiB)"
        )
        for note in large["notes"]:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()
