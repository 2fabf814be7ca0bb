"""Start-up time of ``advisor-cli`` commands: wall time of each as a subprocess, median of 5 runs.

Run from the repository root: ``python -m bench.cli_startup`` (``--runs N`` to change the count). It runs the
``advisor-cli`` beside the running interpreter (the venv's console script), from a temporary folder so the
checkout's files are not what is found, and prints one Markdown table row per command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["--help"],
    ["-h"],
    ["--version"],
    ["losses"],
    ["losses", "focal"],
    ["losses", "--json"],
    ["serve", "--help"],
    ["spec", "schema"],
    ["rules", "check"],
    ["rules", "list"],
    ["rules", "facts"],
]


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "advisor-cli"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "advisor"]


def time_command(args: list[str], runs: int, cwd: str) -> float:
    """Median wall time in seconds of ``advisor-cli ARGS`` (output discarded; a failure stops the bench)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*_cli(), *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "COLUMNS": "120"})  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as cwd:
        print(f"| command | median of {runs} (s) |\n|---|---|")
        for args in COMMANDS:
            print(f"| `advisor-cli {' '.join(args)}` | {time_command(args, runs, cwd):.2f} |", flush=True)


if __name__ == "__main__":
    main()
