"""Device check of the loss catalog on CUDA: every loss agrees with its CPU value in float32, and stays finite
(float32 result, finite gradients) with bf16/fp16 inputs inside a CUDA autocast region.

Run from the repository root on a machine with a GPU: ``python -m bench.cuda_check``. Prints one row per loss; exit code 1 on a failure.
"""

from __future__ import annotations

import sys

import torch

import advisor
from tests.examples import default_spec, example


def _to(value, device, dtype=None):
    if isinstance(value, dict):
        return {k: _to(v, device, dtype) for k, v in value.items()}
    value = value.to(device)
    if dtype is not None and value.is_floating_point():
        value = value.to(dtype)
    return value.detach().requires_grad_() if value.is_floating_point() else value


def _grads_finite(value) -> bool:
    leaves = value.values() if isinstance(value, dict) else [value]
    return all(leaf.grad is None or torch.isfinite(leaf.grad.float()).all() for leaf in leaves)


def check(name: str) -> tuple[bool, str]:
    spec = default_spec(name)
    input, target = example(name)
    cpu = advisor.build_loss(spec)(_to(input, "cpu"), target).item()
    loss = advisor.build_loss(spec).to("cuda")
    gpu = loss(_to(input, "cuda"), _to(target, "cuda")).item()
    notes, ok = [f"cpu {cpu:.6g} cuda {gpu:.6g}"], abs(cpu - gpu) <= 1e-4 * max(1.0, abs(cpu))
    for dtype in (torch.bfloat16, torch.float16):
        low = _to(input, "cuda", dtype)
        with torch.autocast("cuda", dtype=dtype):
            value = loss(low, _to(target, "cuda"))
        value.backward()
        finite = value.dtype == torch.float32 and bool(torch.isfinite(value)) and _grads_finite(low)
        ok &= finite
        notes.append(f"{str(dtype).removeprefix('torch.')} {'ok' if finite else 'NOT FINITE'}")
    return ok, ", ".join(notes)


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing checked")
        return 1
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    failures = 0
    for name in advisor.loss_names():
        try:
            ok, notes = check(name)
        except Exception as exc:  # report every loss, not just the first failure
            ok, notes = False, f"{type(exc).__name__}: {exc}"
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name:15s} {notes}")
    print(f"{len(advisor.loss_names()) - failures} of {len(advisor.loss_names())} losses passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
