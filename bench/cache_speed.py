"""Result cache (issue 14): a cold ``recommend()`` against a cache hit on the bundled churn CSV.

The cold call computes and stores the result in a fresh cache file (in a temporary folder, never the user's
cache); then the same call is repeated and every repeat is a hit: the key (the CSV's bytes hashed, the rule
files' digest, the options), one SQLite read and the JSON parsed back. It prints the cold time, the median
and the slowest hit, and their ratio.

Run from the repository root: ``python -m bench.cache_speed`` (``--epochs``/``--repeats`` for a quicker cold
call; the defaults are recommend()'s own).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import advisor

DATA = Path(__file__).resolve().parents[1] / "client_examples/data/churn.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="Epoch budget (default: recommend()'s).")
    parser.add_argument("--repeats", type=int, default=None, help="Repeats (default: by rows).")
    parser.add_argument("--hits", type=int, default=20, help="Cache hits to time.")
    args = parser.parse_args()
    options: dict[str, Any] = {"target": "churned", "repeats": args.repeats}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "results.sqlite3"
        started = time.perf_counter()
        cold = advisor.recommend(str(DATA), cache=cache, **options)
        cold_s = time.perf_counter() - started
        assert cold.cache is not None and cold.cache.stored and not cold.cache.hit, cold.cache
        hits = []
        for _ in range(args.hits):
            started = time.perf_counter()
            hit = advisor.recommend(str(DATA), cache=cache, **options)
            hits.append(time.perf_counter() - started)
            assert hit.cache is not None and hit.cache.hit
        assert hit.model_copy(update={"cache": None}) == cold.model_copy(update={"cache": None})
        size = cache.stat().st_size
    median = statistics.median(hits)
    setting = ", ".join(f"{name}={value}" for name, value in options.items() if value is not None)
    print(f"cold recommend() on {DATA.name} ({setting}, other options at their defaults): {cold_s:.2f} s")
    print(f"cache hit, {args.hits} calls: median {median * 1000:.1f} ms, slowest {max(hits) * 1000:.1f} ms")
    print(f"cold / hit (median): {cold_s / median:,.0f}x; cache file {size / 1024:.0f} KiB for one entry")


if __name__ == "__main__":
    main()
