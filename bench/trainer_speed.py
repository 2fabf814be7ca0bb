"""Speed of the batched trial trainer, measured in one run at one thread count.

Setting (issues 4 and 10): 24 members = 8 multiclass losses x 3 seeds, MLP F -> 64 -> 10, batch 512, 5 epochs.
For each size it prints the batched trainer's time, its exact FLOP/s (``torch.utils.flop_counter`` over one
step) as a share of a 2048^3 float32 matmul's, and at 10k x 32 also:

* a one-member-at-a-time loop (the plain script a user would write, ``torch.optim.AdamW`` warmed up first), the
  same loop split over two processes, and the ratios (target: batched >= 8x the loop);
* the fixed cost of a step: the batched step on 8-row batches, where arithmetic is negligible (target <= 1.2 ms);
* per-epoch scoring (balanced accuracy of every member on 1,500 tune rows) as a share of the epoch (<= 10%);
* trainer start-up after ``import advisor`` in a fresh process: construction and one step (<= 0.2 s).

Run from the repository root: ``python -m bench.trainer_speed`` (``--sizes 10000x32,100000x128,20000x512``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import advisor
from advisor.task import Head
from advisor.trials import metrics
from advisor.trials.adapters import adapter_for, seed_pooling
from advisor.trials.data import Splits
from advisor.trials.models import standalone_mlp
from advisor.trials.trainer import BatchedTrainer, Member, TrainConfig, _batches, configure_cpu_runtime

CLASSES, EPOCHS, BATCH, HIDDEN = 10, 5, 512, 64
SEEDS = (0, 1, 2)
COUNTS = [2000, 1500, 1200, 1000, 900, 800, 700, 700, 650, 550]
SPECS = [
    {"loss": "cross_entropy"},
    {"loss": "cross_entropy", "params": {"label_smoothing": 0.1}},
    {"loss": "focal", "params": {"gamma": 2.0}},
    {"loss": "class_balanced", "params": {"samples_per_class": COUNTS, "beta": 0.999}},
    {"loss": "logit_adjusted", "params": {"samples_per_class": COUNTS}},
    {"loss": "poly1"},
    {"loss": "gce"},
    {"loss": "sce"},
]
HEAD = Head(type="multiclass", num_classes=CLASSES)
MEMBERS = [(s, seed) for seed in SEEDS for s in range(len(SPECS))]

_STARTUP = """
import time, torch, advisor
from bench.trainer_speed import members, all_rows
from advisor.trials.trainer import BatchedTrainer, TrainConfig, configure_cpu_runtime
configure_cpu_runtime()
x, y = torch.randn(512, 32), torch.randint(0, 10, (512,))
start = time.perf_counter()
trainer = BatchedTrainer(members(), 32, TrainConfig(seeds=(0, 1, 2), epochs=1, batch_size=512, hidden=64))
trainer.fit(x, y, all_rows(3, 512), lambda c, r, o: 0.0, higher_is_better=True, patience={"best_epoch": None})
print(time.perf_counter() - start)
"""


def data(rows: int, features: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, features, generator=g)
    y = (x[:, :CLASSES] + 0.5 * torch.randn(rows, CLASSES, generator=g)).argmax(1)
    return x, y


def members() -> list[Member]:
    specs = [advisor.normalize_spec(s) for s in SPECS]
    return [Member(advisor.build_loss(s), adapter_for(HEAD, s), seed_pooling(s)) for s in specs]


def all_rows(repeats: int, rows: int, validation: int = 2) -> Splits:
    """Every repeat trains on every row and validates on the first ``validation`` rows (tune rows: half)."""
    order = torch.arange(rows)
    return Splits(
        0, order.expand(repeats, rows), order[:validation].expand(repeats, validation), validation // 2
    )


def trainer(features: int, batch: int = BATCH, epochs: int = EPOCHS) -> BatchedTrainer:
    config = TrainConfig(seeds=SEEDS, epochs=epochs, budget_s=1e9, batch_size=batch, hidden=HIDDEN)
    return BatchedTrainer(members(), features, config)


def batched(x: torch.Tensor, y: torch.Tensor, batch: int = BATCH, epochs: int = EPOCHS) -> tuple[float, int]:
    """Seconds of ``fit`` (construction excluded) and the steps it took."""
    run_trainer = trainer(x.shape[1], batch, epochs)
    start = time.perf_counter()
    run = run_trainer.fit(
        x, y, all_rows(len(SEEDS), len(x)), lambda c, r, o: 0.0, higher_is_better=True,
        patience={"best_epoch": None},
    )  # fmt: skip
    return time.perf_counter() - start, run.steps


def step_flops(features: int) -> int:
    """Exact FLOPs of one batched step (forward and backward), counted by torch's flop counter."""
    run_trainer = trainer(features)
    x, y = data(BATCH, features)
    alive = {(c, s): True for c in range(len(SPECS)) for s in range(len(SEEDS))}
    with FlopCounterMode(display=False) as counter:
        values = run_trainer._step_losses(x.expand(len(SEEDS), -1, -1), y.expand(len(SEEDS), -1), alive)
        values.sum().backward()
    return counter.get_total_flops()


def sequential(x: torch.Tensor, y: torch.Tensor, chosen: list[tuple[int, int]]) -> float:
    torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())  # its first construction imports torch._dynamo
    start = time.perf_counter()
    for spec_index, seed in chosen:
        model = standalone_mlp(x.shape[1], HIDDEN, CLASSES, seed)
        loss = advisor.build_loss(SPECS[spec_index])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=TrainConfig.weight_decay)
        for epoch in range(EPOCHS):
            for indices in _batches(all_rows(1, len(x)), BATCH, (seed,), epoch)[:, 0]:
                value = loss(model(x[indices]), y[indices])
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
    return time.perf_counter() - start


def _half(args: tuple[list[tuple[int, int]], int, int]) -> float:
    chosen, rows, features = args
    torch.set_num_threads(1)
    x, y = data(rows, features)
    return sequential(x, y, chosen)


def scoring_share(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(seconds of all members' scoring per epoch, share of the epoch) with 1,500 tune rows."""
    run_trainer = trainer(x.shape[1], epochs=3)
    adapter = adapter_for(HEAD, advisor.normalize_spec(SPECS[0]))
    tune = 1500
    y_tune = y[:tune]
    spent = [0.0]

    def select(candidate: int, repeat: int, output: torch.Tensor) -> float:
        start = time.perf_counter()
        value = metrics.score("balanced_accuracy", adapter.predict(output), y_tune)
        spent[0] += time.perf_counter() - start
        return value

    start = time.perf_counter()
    run_trainer.fit(
        x, y, all_rows(len(SEEDS), len(x), 2 * tune), select, higher_is_better=True,
        patience={"early_stopping": 10, "best_epoch": None},
    )  # fmt: skip
    total = time.perf_counter() - start
    return spent[0] / 3, spent[0] / total


def matmul_flops(threads: int) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048**3 / (time.perf_counter() - start)


def median(run, repeats: int = 3):
    results = [run() for _ in range(repeats)]
    return sorted(results, key=lambda r: r[0] if isinstance(r, tuple) else r)[repeats // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000x32,20000x512", help="rows x features, comma-separated")
    sizes = [tuple(int(v) for v in size.split("x")) for size in parser.parse_args().sizes.split(",")]
    threads = configure_cpu_runtime()
    peak = matmul_flops(threads)
    print(f"threads: {threads}; members: {len(MEMBERS)}; 2048^3 float32 matmul: {peak / 1e9:.1f} GFLOP/s")
    for rows, features in sizes:
        x, y = data(rows, features)
        seconds, steps = median(lambda x=x, y=y: batched(x, y))
        flops = step_flops(features) * steps
        print(
            f"{rows} x {features}: batched {seconds:6.3f} s, {steps} steps, {seconds / steps * 1e3:5.2f} ms a step; "
            f"{flops / seconds / 1e9:5.1f} GFLOP/s = {flops / seconds / peak:5.1%} of the matmul (exact count; "
            "target >= 50% at 20k x 512)"
        )
        if (rows, features) != (10_000, 32):
            continue
        loop = median(lambda x=x, y=y: sequential(x, y, MEMBERS))
        print(f"  one-at-a-time loop: {loop:6.3f} s   batched speed-up {loop / seconds:5.2f}x (target >= 8x)")
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            halves = [(MEMBERS[0::2], rows, features), (MEMBERS[1::2], rows, features)]
            two = max(pool.map(_half, halves))  # each process times its own training; start-up excluded
        print(f"  two sequential processes: {two:6.3f} s   batched speed-up {two / seconds:5.2f}x")
        small, small_steps = median(lambda x=x, y=y: batched(x[:800], y[:800], batch=8, epochs=2))
        print(
            f"  fixed cost of a step (8-row batches): {small / small_steps * 1e3:5.2f} ms (target <= 1.2 ms)"
        )
        per_epoch, share = scoring_share(x, y)
        print(
            f"  scoring every member each epoch: {per_epoch * 1e3:6.1f} ms an epoch = {share:5.1%} of the trial "
            "(target <= 10%)"
        )
    starts = [
        float(
            subprocess.run(
                [sys.executable, "-c", _STARTUP], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    print(f"trainer start-up after import (construction + one step): {statistics.median(starts):5.3f} s "
          "(target <= 0.2 s)")  # fmt: skip


if __name__ == "__main__":
    main()
