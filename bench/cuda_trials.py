"""Device check of the trials on CUDA: ``recommend(device="cuda")`` for every trial model kind (MLP, conv net
for masks, 1-D conv net for waveforms), beside the same call on the CPU.

Run from the repository root on a machine with a GPU: ``python -m bench.cuda_trials``. Prints, per task, the
top candidate, its metric and the trial time on each device; exit code 1 when a CUDA run fails.
"""

from __future__ import annotations

import sys
import time

import torch

from advisor.core import recommend

TASKS = {
    "multiclass (MLP)": {
        "heads": [{"type": "multiclass", "class_histogram": [2000, 600, 150, 40]}],
        "n_features": 32,
    },
    "binary (MLP)": {"heads": [{"type": "binary", "class_histogram": [3800, 200]}], "n_features": 16},
    "regression (MLP)": {
        "heads": [{"type": "regression", "target": {"mean": 1, "variance": 4, "outlier_fraction": 0.1}}]
    },
    "segmentation (conv2d)": {"heads": [{"type": "segmentation", "foreground_shares": [0.05, 0.02]}]},
    "audio (conv1d)": {"heads": [{"type": "audio", "sample_rate": 16000}]},
}


def run(task: dict, device: str) -> tuple[str, float, float, str]:
    started = time.perf_counter()
    result = recommend(task, device=device, epochs=8, repeats=3, budget_s=120, cache=False)
    head = result.heads[0]
    top = head.candidates[0]
    return top.spec.loss, top.evidence.mean, time.perf_counter() - started, head.stopped_by


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing checked")
        return 1
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    failures = 0
    for name, task in TASKS.items():
        try:
            cuda = run(task, "cuda")
            cpu = run(task, "cpu")
        except Exception as exc:  # report every task
            failures += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            continue
        print(
            f"PASS {name:22s} cuda: {cuda[0]} {cuda[1]:.4f} in {cuda[2]:.1f} s ({cuda[3]}) | "
            f"cpu: {cpu[0]} {cpu[1]:.4f} in {cpu[2]:.1f} s ({cpu[3]})"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
