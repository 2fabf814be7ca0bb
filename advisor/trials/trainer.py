"""The batched trial trainer: every candidate x seed trains together, each member under its own loss.

One step = one forward per output width, the sum of all living members' losses, one backward, one AdamW step.
Members with the same seed see the same batches and start from the same weights, so candidates are compared
in pairs that differ only in their loss. Losses of one family (``advisor.losses.families``) are computed in one
vectorised call over their members; a step never waits on the host (divergence is read once per epoch).
"""

from __future__ import annotations

import ctypes
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from advisor.losses.families import family_of, fused_loss
from advisor.trials.adapters import Adapter
from advisor.trials.data import Splits
from advisor.trials.models import StackedConvNet, StackedMLP, StackedUNet

StopReason = Literal["epochs", "early_stopping", "time", "cancelled", "diverged"]


@dataclass(frozen=True)
class Member:
    """One candidate's loss and output layout (it trains once per seed).

    ``pooled`` is 'mean' or 'sum' when the loss's reduction is a plain mean (or sum) over entries, so one call
    over every seed's batch gives the same gradients as one call per seed; None otherwise.
    """

    loss: nn.Module
    adapter: Adapter
    pooled: Literal["mean", "sum"] | None = None


@dataclass(frozen=True)
class TrainConfig:
    """How trials train: one seed per repeat, ``epochs`` passes at most, ``budget_s`` a wall-clock cap."""

    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 20
    budget_s: float = 20.0
    batch_size: int = 256
    hidden: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    device: str = "cpu"


@dataclass(frozen=True)
class Progress:
    """What a progress callback sees after each epoch."""

    epoch: int
    epochs: int
    alive: int
    members: int
    best_so_far: float | None
    elapsed_s: float


@dataclass
class Choice:
    """The epoch a training protocol keeps for one member, and the raw validation output at that epoch."""

    epoch: int | None = None
    tune_value: float | None = None
    output: Tensor | None = None
    stopped: bool = False  # the protocol's patience ran out: later epochs no longer count for it


@dataclass
class MemberRun:
    """The record of one (candidate, repeat) member."""

    candidate: int
    repeat: int  # repeat number (its split and its initialisation seed)
    tune_curve: list[float] = field(default_factory=list)  # tune-row metric per epoch
    train_loss: list[float] = field(default_factory=list)  # mean training loss per epoch
    diverged_at_epoch: int | None = None
    choices: dict[str, Choice] = field(default_factory=dict)  # by protocol name

    @property
    def done(self) -> bool:
        return self.diverged_at_epoch is not None or (
            bool(self.choices) and all(c.stopped for c in self.choices.values())
        )

    def observe(self, value: float, output: Tensor, higher_is_better: bool, patience: dict[str, int | None]):
        """Record one epoch's tune value; each protocol keeps its best epoch until its patience runs out."""
        self.tune_curve.append(value)
        epoch = len(self.tune_curve)
        kept = None  # copied off the device once, and only when some protocol keeps this epoch
        for name, wait in patience.items():
            choice = self.choices.setdefault(name, Choice())
            if choice.stopped:
                continue
            better = math.isfinite(value) and (
                choice.tune_value is None
                or (value > choice.tune_value if higher_is_better else value < choice.tune_value)
            )
            if better:
                kept = output.detach().cpu() if kept is None else kept
                choice.epoch, choice.tune_value, choice.output = epoch, value, kept
            elif wait is not None and epoch - (choice.epoch or 0) >= wait:
                choice.stopped = True


@dataclass
class TrialRun:
    members: list[MemberRun]
    stopped_by: StopReason
    epochs_completed: int
    steps: int
    elapsed_s: float


ModelFactory = Callable[[int, int], nn.Module]


def mlp_factory(in_dim: int, config: TrainConfig) -> ModelFactory:
    """Stacked two-layer MLPs for tabular features."""
    return lambda out_dim, candidates: StackedMLP(
        in_dim, config.hidden, out_dim, list(config.seeds), candidates
    )


def conv_factory(dims: int, in_channels: int, config: TrainConfig, *, residual: bool = False) -> ModelFactory:
    """Stacked small fully convolutional nets for images (dims 2) or waveforms (dims 1)."""
    return lambda out_dim, candidates: StackedConvNet(
        dims, in_channels, config.hidden // 4, out_dim, list(config.seeds), candidates, residual=residual
    )


# The segmentation trial net: a U-Net of 2 pooled levels, width hidden // 8 (8 / 16 / 32 channels at full, half
# and quarter resolution for the default hidden 64). Its full-resolution decoder convolution reads 3 w channels,
# so its cost grows as w^2: at width 16 recommend() on client_examples/data/cells.npz took 5x as long as with the
# three-convolution net of width 16 it replaces, at width 8 2x, while what a pixel sees grows from 5 to 30 px
# (bench/RESULTS.md, issue 13).
UNET_LEVELS = 2
UNET_WIDTH_DIVISOR = 8


def unet_factory(in_channels: int, config: TrainConfig) -> ModelFactory:
    """Stacked small U-Nets (:class:`advisor.trials.models.StackedUNet`) for segmentation images."""
    return lambda out_dim, candidates: StackedUNet(
        in_channels, config.hidden // UNET_WIDTH_DIVISOR, out_dim, list(config.seeds), candidates,
        levels=UNET_LEVELS,
    )  # fmt: skip


def available_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_CONFIGURED: list[int] = []  # the thread count a caller set explicitly for this process


def configure_cpu_runtime(threads: int | None = None) -> int:
    """Set torch's thread count (``threads``, or one for this machine) and pin glibc's malloc thresholds;
    returns the threads. A count set explicitly (a worker of :func:`advisor.batch.recommend_many`, a Ray task)
    holds for the process: later calls without one keep it.

    The count depends on the machine alone, never on its load, so the same input gives the same numbers
    whatever else runs. Two cores get one thread: both threads of a shared two-core machine collapse when
    another process takes a core (a step went from 10 to 200 ms here), and a second thread gained under 10% on
    an idle one. Larger machines get half their cores, at most 4. Without pinned thresholds glibc returns
    memory to the OS every step (millions of page faults, a 2x slowdown measured on 100k-row trials).
    """
    if threads is not None:
        _CONFIGURED[:] = [threads]
    elif _CONFIGURED:
        threads = _CONFIGURED[0]
    else:
        cores = available_cpus()
        threads = 1 if cores <= 2 else min(4, cores // 2)
    torch.set_num_threads(threads)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 512 << 20)  # M_MMAP_THRESHOLD
    except OSError:  # not glibc: nothing to pin
        pass
    return threads


def _batches(splits: Splits, batch_size: int, seeds: tuple[int, ...], epoch: int) -> Tensor:
    """(steps, repeats, batch) row indices: a fresh permutation of each repeat's training rows per epoch,
    drawn from that repeat's seed; the last partial batch is dropped."""
    n = splits.train.shape[1]
    size = min(batch_size, n)
    steps = n // size
    orders = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        orders.append(torch.randperm(n, generator=generator)[: steps * size].view(steps, size))
    positions = torch.stack(orders, dim=1)
    return splits.train[torch.arange(len(seeds))[None, :, None], positions]


Selector = Callable[[int, int, Tensor], float]


class FusedAdamW:
    """AdamW over a fixed parameter list as one fused kernel call per step.

    The update is ``torch.optim.AdamW(fused=True)``'s (the same kernel, tested against ``torch.optim.AdamW``);
    going around ``torch.optim`` saves its first construction, which imports ``torch._dynamo`` (1.3 s here).
    CPU and CUDA only, the devices trials run on.
    """

    def __init__(
        self, params: list[nn.Parameter], lr: float, weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
    ) -> None:  # fmt: skip
        self.params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), device=p.device) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        steps = [self.steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            [self.params[i] for i in live], [self.params[i].grad for i in live],
            [self.exp_avgs[i] for i in live], [self.exp_avg_sqs[i] for i in live], [], steps,
            lr=self.lr, beta1=self.betas[0], beta2=self.betas[1], weight_decay=self.weight_decay, eps=self.eps,
            amsgrad=False, maximize=False,
        )  # fmt: skip


@dataclass(frozen=True)
class _Fused:
    """Group positions ``start:stop`` whose losses are one family, computed by ``loss``."""

    start: int
    stop: int
    kind: str  # the adapter kind, which is the family's name
    loss: nn.Module


class _Plan(NamedTuple):
    """How one width group's losses are computed, and the order of its members in a step's values."""

    fused: list[_Fused]
    single: list[tuple[int, int]]  # (group position, candidate) of members with their own loss call
    order: list[int]


class BatchedTrainer:
    """Trains ``members x repeats`` small models together, each repeat on its own split.

    Parameters
    ----------
    members : list of Member
        One per candidate; members with the same output width share a stacked model.
    model : callable or int
        ``model(out_dim, candidates)`` builds a stacked model for that many candidates x the config's seeds;
        an int is the input width of a stacked MLP.
    config : TrainConfig
        One seed per repeat (initialisation and batch order), epochs, wall-clock cap, batch size, width,
        learning rate, device.
    """

    def __init__(self, members: list[Member], model: ModelFactory | int, config: TrainConfig) -> None:
        self.members, self.config = members, config
        self.device = torch.device(config.device)
        if isinstance(model, int):  # tabular features: a stacked MLP of that input width
            model = mlp_factory(model, config)
        families = [_family(m) for m in members]
        widths = sorted({m.adapter.out_dim for m in members})
        # Within a width, members of one family sit side by side, so their outputs are one slice.
        self.groups = [
            sorted(
                (i for i, m in enumerate(members) if m.adapter.out_dim == w),
                key=lambda i: (families[i] or "~", i),
            )
            for w in widths
        ]
        self.models = nn.ModuleList(
            model(width, len(group)) for width, group in zip(widths, self.groups, strict=True)
        ).to(self.device)
        self.plans = [
            self._plan(group, families, width) for group, width in zip(self.groups, widths, strict=True)
        ]
        # The (seeds, members) value matrix of a step lists members in this order.
        self.order = [c for plan in self.plans for c in plan.order]
        for member in members:
            member.loss.to(self.device)
        self.optimizer = FusedAdamW(list(self.models.parameters()), config.lr, config.weight_decay)

    def _plan(self, group: list[int], families: list[str | None], width: int) -> _Plan:
        """Split one width group into runs of one family (fused) and members with their own call."""
        fused, single, start = [], [], 0
        for kind, run in itertools.groupby(group, key=lambda candidate: families[candidate]):
            members = list(run)
            stop = start + len(members)
            if kind is None:
                single.extend(zip(range(start, stop), members, strict=True))
            else:
                losses = [self.members[c].loss for c in members]
                fused.append(_Fused(start, stop, kind, fused_loss(losses, width).to(self.device)))
            start = stop
        order = [c for part in fused for c in group[part.start : part.stop]] + [c for _, c in single]
        return _Plan(fused, single, order)

    def _outputs(self, x: Tensor) -> list[tuple[int, int, Tensor]]:
        """(candidate, repeat index, raw output) for every member, from (repeats, batch, in) inputs."""
        found = []
        for model, group in zip(self.models, self.groups, strict=True):
            out = model(x)
            for slot in range(model.members):
                seed_index, position = divmod(slot, len(group))
                found.append((group[position], seed_index, out[slot]))
        return found

    def fit(
        self,
        x: Tensor,
        y: Tensor,
        splits: Splits,
        select: Selector,
        *,
        higher_is_better: bool,
        patience: dict[str, int | None],
        progress: Callable[[Progress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> TrialRun:
        """Train until the epochs, every protocol's patience, the time cap, a cancel or divergence stops it.

        ``select(candidate, repeat index, output on the tune rows)`` rates a member after each epoch; for each
        protocol in ``patience`` (name -> epochs without improvement before it stops; None: never) the member
        keeps the raw validation output of its best tune epoch. Score rows are never rated here.
        """
        config, seeds = self.config, self.config.seeds
        x, y = x.to(self.device), y.to(self.device)
        runs = [MemberRun(c, splits.first + r) for r in range(len(seeds)) for c in range(len(self.members))]
        by_key = {(run.candidate, run.repeat - splits.first): run for run in runs}
        alive = dict.fromkeys(by_key, True)
        x_val = x[splits.validation.to(self.device)]
        self._check_targets(x, y, splits)
        self._start, self._steps = time.perf_counter(), 0
        epochs_done, stopped = 0, "epochs"
        for epoch in range(config.epochs):
            sums, batches, stop = self._train_epoch(epoch, x, y, splits, by_key, alive, cancel, epochs_done)
            if stop is not None:
                stopped = stop
                break
            epochs_done += 1
            self._evaluate(
                x_val, splits.tune_rows, by_key, alive, sums, batches, select, higher_is_better, patience
            )
            if progress is not None:
                best = [
                    r.choices[n].tune_value
                    for r in runs
                    for n in r.choices
                    if r.choices[n].tune_value is not None
                ]
                pick = max if higher_is_better else min
                progress(Progress(
                    epoch + 1, config.epochs, sum(alive.values()), len(runs), pick(best) if best else None,
                    time.perf_counter() - self._start,
                ))  # fmt: skip
            if not any(alive.values()):
                diverged = all(r.diverged_at_epoch is not None for r in runs)
                stopped = "diverged" if diverged else "early_stopping"
                break
        return TrialRun(runs, stopped, epochs_done, self._steps, time.perf_counter() - self._start)

    @torch.no_grad()
    def _check_targets(self, x: Tensor, y: Tensor, splits: Splits) -> None:
        """Run every fused member's own catalog loss once on a few training rows: the families skip the
        catalog's per-call checks of target shape, type and range, so a bad target fails here, once."""
        rows = splits.train[0, :8].to(self.device)
        for model, plan, group in zip(self.models, self.plans, self.groups, strict=True):
            if not plan.fused:  # families are tabular: only stacked MLPs have them
                continue
            out = model(x[rows].expand(len(self.config.seeds), -1, -1))
            for part in plan.fused:
                for position in range(part.start, part.stop):
                    member = self.members[group[position]]
                    member.loss(member.adapter.loss_input(out[position]), member.adapter.loss_target(y[rows]))

    def _train_epoch(self, epoch, x, y, splits, by_key, alive, cancel, epochs_done):
        """One pass; returns per-member loss sums, the batch count and a stop reason (or None).

        Loss values stay on the device during the pass; they are read once at its end, where a member with a
        non-finite sum is marked diverged. Until then its non-finite values are masked out of the total.
        """
        seeds = len(self.config.seeds)
        living = torch.tensor(
            [[alive[(c, s)] for c in self.order] for s in range(seeds)], dtype=torch.bool, device=self.device
        )
        sums = torch.zeros(living.shape, device=self.device)
        batches = _batches(splits, self.config.batch_size, self.config.seeds, epoch).to(self.device)
        stop = None
        for indices in batches:  # members stop only between epochs: fit() ends when none is left
            if cancel is not None and cancel():
                stop = "cancelled"
                break
            # The time cap never cuts the first epoch: every member gets at least one evaluation.
            if epochs_done > 0 and time.perf_counter() - self._start > self.config.budget_s:
                stop = "time"
                break
            values = self._step_losses(x[indices], y[indices], alive)
            kept = living & torch.isfinite(values)
            total = torch.where(kept, values, torch.zeros_like(values)).sum()
            self.optimizer.zero_grad()
            total.backward()
            self.optimizer.step()
            self._steps += 1
            sums += values.detach()
        by_member = {}
        for s, row in enumerate(sums.cpu().tolist()):
            for candidate, value in zip(self.order, row, strict=True):
                key = (candidate, s)
                by_member[key] = value
                if stop is None and alive[key] and not math.isfinite(value):
                    alive[key] = False
                    by_key[key].diverged_at_epoch = epoch
        return by_member, len(batches), stop

    def _step_losses(self, x: Tensor, y: Tensor, alive: dict) -> Tensor:
        """(seeds, members) loss values of one step, members in ``self.order``; NaN/inf marks divergence.

        A family's members come from one call. A candidate outside a family whose loss is a plain mean over
        entries is evaluated once over all its repeats' batches (repeats x batch rows): counted once per
        repeat, that has exactly the gradient of the per-repeat sum, and its repeats share that value. Members
        that stopped no longer train: AdamW still decays their weights, but nothing they report is read.
        """
        seeds, batch = x.shape[0], x.shape[1]
        columns = []
        for model, group, plan in zip(self.models, self.groups, self.plans, strict=True):
            if plan.fused:  # families are tabular (stacked MLPs) and read the class-major layout
                major = model.class_major(x)
                major = major.view(seeds, len(group), *major.shape[1:])
                out = major.transpose(2, 3)
                for part in plan.fused:
                    columns.append(part.loss(*_family_inputs(part.kind, major[:, part.start : part.stop], y)))
            else:
                out = model(x)
                out = out.view(seeds, len(group), batch, *out.shape[2:])
            for position, candidate in plan.single:
                columns.append(self._own_call(candidate, out[:, position], y, alive)[:, None])
        return torch.cat(columns, dim=1)

    def _own_call(self, candidate: int, out: Tensor, y: Tensor, alive: dict) -> Tensor:
        """(seeds,) values of one candidate computed by its own loss; zeros for stopped repeats."""
        member, seeds = self.members[candidate], out.shape[0]
        living = [s for s in range(seeds) if alive[(candidate, s)]]
        if member.pooled is not None and len(living) == seeds:
            value = member.loss(
                member.adapter.loss_input(out.flatten(0, 1)), member.adapter.loss_target(y.flatten(0, 1))
            )
            return (value if member.pooled == "mean" else value / seeds).expand(seeds)
        zero = out.new_zeros(())
        return torch.stack([
            member.loss(member.adapter.loss_input(out[s]), member.adapter.loss_target(y[s]))
            if s in living else zero
            for s in range(seeds)
        ])  # fmt: skip

    @torch.no_grad()
    def _evaluate(self, x_val, tune_rows, by_key, alive, sums, batches, select, higher_is_better, patience):
        for candidate, seed_index, out in self._outputs(x_val):
            run = by_key[(candidate, seed_index)]
            if not alive[(candidate, seed_index)]:
                continue
            run.train_loss.append(sums[(candidate, seed_index)] / max(batches, 1))
            value = select(candidate, seed_index, out[:tune_rows])
            run.observe(value, out, higher_is_better, patience)
            if run.done:
                alive[(candidate, seed_index)] = False


def _family(member: Member) -> str | None:
    """The loss family a member's loss is computed in, when its output layout is the one the family reads."""
    family = family_of(member.loss)
    return family if family == member.adapter.kind else None


def _family_inputs(kind: str, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(seeds, members, width, batch) raw outputs and (seeds, batch, ...) stored targets in a family's layout."""
    if kind == "point":
        return out[:, :, 0], y
    if kind == "sigmoid":  # binary targets (S, B) or multilabel (S, B, L) -> (S, L, B)
        target = y.to(out.dtype)
        return out, target[:, None] if target.dim() == 2 else target.transpose(1, 2)
    return out, y
