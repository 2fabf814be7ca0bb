"""Valid example inputs for every catalog loss (default parameters), shared by the catalog-wide tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

N, C = 6, 3


def _logits(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=g) * 2.0


def _classes(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randint(0, C, shape, generator=g)


def _binary(g: torch.Generator, *shape: int) -> Tensor:
    return torch.randint(0, 2, shape, generator=g).float()


def _multiclass(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return _logits(g, N, C), _classes(g, N)


def _multilabel(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return _logits(g, N, C), _binary(g, N, C)


def _regression(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return torch.randn(N, generator=g), torch.randn(N, generator=g)


def _mean_log_var(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return torch.randn(N, 2, generator=g), torch.randn(N, generator=g)


def _counts(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return torch.randn(N, generator=g), torch.poisson(torch.full((N,), 2.0), generator=g)


def _segmentation(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return _logits(g, 2, C, 5, 5), _classes(g, 2, 5, 5)


def _distribution(g: torch.Generator) -> tuple[Tensor, Tensor]:
    return _logits(g, N, C).log_softmax(1), _logits(g, N, C).softmax(1)


def _audio(g: torch.Generator) -> tuple[Tensor, Tensor]:
    target = torch.randn(2, 1, 4096, generator=g)
    return target + 0.3 * torch.randn(2, 1, 4096, generator=g), target


def _multi_task(g: torch.Generator) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    (x1, y1), (x2, y2) = _multiclass(g), _regression(g)
    return {"label": x1, "price": x2}, {"label": y1, "price": y2}


MULTI_TASK_SPEC = {
    "loss": "multi_task",
    "params": {"heads": {"label": {"loss": "cross_entropy"}, "price": {"loss": "huber"}}},
}

# Parameters a loss needs beyond its defaults (dataset-level counts have no sensible default).
REQUIRED_PARAMS: dict[str, dict] = {
    "class_balanced": {"samples_per_class": [50, 10, 2]},
    "ldam": {"samples_per_class": [50, 10, 2]},
    "logit_adjusted": {"samples_per_class": [50, 10, 2]},
    "multi_task": MULTI_TASK_SPEC["params"],
}

EXAMPLES: dict[str, Callable[[torch.Generator], tuple]] = {
    **dict.fromkeys(["mse", "l1", "huber", "smooth_l1", "log_cosh", "quantile"], _regression),
    **dict.fromkeys(["gaussian_nll", "beta_nll"], _mean_log_var),
    **dict.fromkeys(["poisson_nll", "tweedie"], _counts),
    **dict.fromkeys(
        ["cross_entropy", "focal", "class_balanced", "ldam", "logit_adjusted", "poly1", "gce", "sce"],
        _multiclass,
    ),
    "nll": lambda g: (_logits(g, N, C).log_softmax(1), _classes(g, N)),
    **dict.fromkeys(["bce", "binary_focal", "asl"], _multilabel),
    **dict.fromkeys(["dice", "dice_ce", "tversky", "focal_tversky", "jaccard", "lovasz"], _segmentation),
    "kl_div": _distribution,
    **dict.fromkeys(["stft", "mr_stft", "si_sdr", "snr", "esr"], _audio),
    "multi_task": _multi_task,
}


def example(name: str, seed: int = 0) -> tuple:
    """(input, target) valid for loss ``name`` with default parameters."""
    return EXAMPLES[name](torch.Generator().manual_seed(seed))


def default_spec(name: str) -> dict:
    return {"loss": name, "params": REQUIRED_PARAMS.get(name, {})}
