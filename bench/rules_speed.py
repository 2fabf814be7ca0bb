"""Rule engine speed: loading every rule file, and evaluating every rule for one task description.

Targets (issue 3): evaluation under 1 ms median; loading under 100 ms. Run from the repository root:
``python -m bench.rules_speed``. Prints the measured medians beside the targets.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from advisor.rules import candidates_from, facts_for, load_rules
from advisor.rules.loader import _load_file, _rule_set
from advisor.task import parse_task

TASK = parse_task(
    {
        "heads": [
            {
                "name": "label",
                "type": "multiclass",
                "class_histogram": [5000, 1200, 300, 80, 20],
                "label_noise": {"rate": 0.05},
            }
        ],
        "n_samples": 6600,
        "n_features": 32,
    }
)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_load() -> None:
    _load_file.cache_clear()  # measure parsing and validation, not the caches
    _rule_set.cache_clear()
    load_rules()


def main() -> None:
    rules = load_rules()
    head = TASK.heads[0]

    def evaluate_conditions() -> list[bool]:
        facts = facts_for(TASK, head)
        return [rule.predicate(facts) for rule in rules.active()]

    load = median_seconds(cold_load, 20)
    conditions = median_seconds(evaluate_conditions, 2000)
    full = median_seconds(lambda: candidates_from(rules, TASK), 500)
    matched = sum(evaluate_conditions())
    print(
        f"rules: {len(rules.rules)} in {len({r.source for r in rules.rules})} files; {matched} match the task"
    )
    print(f"load all rule files (cold):              {load * 1e3:8.2f} ms median   (target < 100 ms)")
    print(f"evaluate all rule conditions (1 task):   {conditions * 1e3:8.3f} ms median   (target < 1 ms)")
    print(f"candidates() incl. derivations + specs:  {full * 1e3:8.3f} ms median")


if __name__ == "__main__":
    main()
