"""Batched versus sequential training of the same 24 members (8 losses x 3 seeds).

Setting (issue 4): 10,000 rows x 32 features, 10 classes, 5 epochs, batch 512, MLP 32 -> 64 -> 10, Adam.
Prints, measured in this one run at the same thread count: the batched trainer, a one-member-at-a-time loop,
the same loop split over two processes, their ratios, the batched trainer's FLOP/s and a 2048^3 float32
matmul's FLOP/s. Run from the repository root: ``python -m bench.trainer_speed``.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

import torch

import advisor
from advisor.task import Head
from advisor.trials.adapters import adapter_for, seed_pooling
from advisor.trials.data import Splits
from advisor.trials.models import standalone_mlp
from advisor.trials.trainer import BatchedTrainer, Member, TrainConfig, _batches, configure_cpu_runtime

ROWS, FEATURES, CLASSES, EPOCHS, BATCH, HIDDEN = 10_000, 32, 10, 5, 512, 64
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


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, FEATURES, generator=g)
    y = (x[:, :CLASSES] + 0.5 * torch.randn(ROWS, CLASSES, generator=g)).argmax(1)
    return x, y


def batched(x: torch.Tensor, y: torch.Tensor) -> float:
    specs = [advisor.normalize_spec(s) for s in SPECS]
    members = [Member(advisor.build_loss(s), adapter_for(HEAD, s), seed_pooling(s)) for s in specs]
    config = TrainConfig(seeds=SEEDS, epochs=EPOCHS, budget_s=1e9, batch_size=BATCH, hidden=HIDDEN)
    trainer = BatchedTrainer(members, FEATURES, config)
    start = time.perf_counter()
    splits = _all_rows(len(SEEDS))
    trainer.fit(x, y, splits, lambda c, r, o: 0.0, higher_is_better=True, patience={"best_epoch": None})
    return time.perf_counter() - start


def _all_rows(repeats: int) -> Splits:
    """Every repeat trains on every row and validates on row 0 (the benchmark times training only)."""
    rows = torch.arange(ROWS)
    return Splits(0, rows.expand(repeats, ROWS), rows[:2].expand(repeats, 2), 1)


def sequential(x: torch.Tensor, y: torch.Tensor, members: list[tuple[int, int]]) -> float:
    start = time.perf_counter()
    for spec_index, seed in members:
        model = standalone_mlp(FEATURES, HIDDEN, CLASSES, seed)
        loss = advisor.build_loss(SPECS[spec_index])
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=TrainConfig.weight_decay)
        for epoch in range(EPOCHS):
            for indices in _batches(_all_rows(1), BATCH, (seed,), epoch)[:, 0]:
                value = loss(model(x[indices]), y[indices])
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
    return time.perf_counter() - start


def _half(args: tuple[list[tuple[int, int]], int]) -> float:
    members, threads = args
    torch.set_num_threads(threads)
    x, y = data()
    return sequential(x, y, members)


def matmul_flops(threads: int) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048**3 / (time.perf_counter() - start)


def median(run, repeats: int = 3) -> float:
    return statistics.median(run() for _ in range(repeats))


def main() -> None:
    threads = configure_cpu_runtime()
    x, y = data()
    members = [(s, seed) for seed in SEEDS for s in range(len(SPECS))]
    t_batched = median(lambda: batched(x, y))
    t_loop = median(lambda: sequential(x, y, members))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        halves = [members[0::2], members[1::2]]
        # Each process times its own training; the slower one bounds the pair (process start-up excluded).
        t_two = max(pool.map(_half, [(halves[0], 1), (halves[1], 1)]))
    steps = EPOCHS * (ROWS // BATCH)
    flops = 3 * 2 * BATCH * (FEATURES * HIDDEN + HIDDEN * CLASSES) * len(members) * steps
    peak = matmul_flops(threads)
    print(f"threads: {threads}; members: {len(members)}; steps: {steps}")
    print(f"batched trainer:          {t_batched:6.3f} s")
    print(
        f"one-at-a-time loop:       {t_loop:6.3f} s   batched speed-up {t_loop / t_batched:4.2f}x (target >= 2.5x)"
    )
    print(
        f"two sequential processes: {t_two:6.3f} s   batched speed-up {t_two / t_batched:4.2f}x (target > 1x; "
        "1 thread each, start-up excluded)"
    )
    print(
        f"batched FLOP/s: {flops / t_batched / 1e9:6.1f} GFLOP/s = {flops / t_batched / peak:5.1%} of a 2048^3 "
        f"float32 matmul at {peak / 1e9:6.1f} GFLOP/s (aim >= 40%)"
    )


if __name__ == "__main__":
    main()
