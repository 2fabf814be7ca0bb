"""Loss Advisor: which loss should this model train with, configured how, and why.

The public Python API::

    import advisor
    loss = advisor.build_loss({"loss": "focal", "params": {"gamma": 2.0}})

Every name below imports its module on first use, so ``import advisor`` costs nothing: the catalog loads torch
when it is first touched, and ``advisor-cli --help`` never does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from advisor.errors import AdvisorError, FieldViolation, LossInputError, SpecError, WorkerLostError

if TYPE_CHECKING:
    from advisor.batch import recommend_many
    from advisor.core import recommend
    from advisor.losses import (
        CatalogLoss,
        LossParams,
        build_loss,
        catalog,
        get_loss_info,
        loss_names,
        normalize_spec,
        register_loss,
        spec_json_schema,
    )
    from advisor.profiling import ProfileError, profile
    from advisor.recipes import Recipe, RecipeError, apply_recipe
    from advisor.recommendation import LossChoice, Recommendation
    from advisor.rules import candidates
    from advisor.spec import LossSpec
    from advisor.task import Head, TaskDescription, TaskError

__version__ = "0.1.0"

_EXPORTS = {
    "advisor.losses": ("CatalogLoss", "LossParams", "build_loss", "catalog", "get_loss_info", "loss_names",
                       "normalize_spec", "register_loss", "spec_json_schema"),
    "advisor.spec": ("LossSpec",),
    "advisor.task": ("Head", "TaskDescription", "TaskError"),
    "advisor.profiling": ("ProfileError", "profile"),
    "advisor.rules": ("candidates",),
    "advisor.core": ("recommend",),
    "advisor.batch": ("recommend_many",),
    "advisor.recommendation": ("LossChoice", "Recommendation"),
    "advisor.recipes": ("Recipe", "RecipeError", "apply_recipe"),
}  # fmt: skip
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if not name.startswith("_"):  # a submodule, as `import advisor; advisor.losses` always allowed
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'advisor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [  # noqa: RUF022 (grouped by topic)
    "AdvisorError",
    "FieldViolation",
    "LossInputError",
    "SpecError",
    "WorkerLostError",
    "__version__",
    "CatalogLoss",
    "LossParams",
    "LossSpec",
    "build_loss",
    "catalog",
    "get_loss_info",
    "loss_names",
    "normalize_spec",
    "register_loss",
    "spec_json_schema",
    "Head",
    "TaskDescription",
    "TaskError",
    "ProfileError",
    "profile",
    "candidates",
    "recommend",
    "recommend_many",
    "Recommendation",
    "LossChoice",
    "Recipe",
    "RecipeError",
    "apply_recipe",
]
