"""Loss Advisor: which loss should this model train with, configured how, and why.

The public Python API::

    import advisor
    loss = advisor.build_loss({"loss": "focal", "params": {"gamma": 2.0}})
"""

from advisor.errors import AdvisorError, FieldViolation, LossInputError, SpecError
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
from advisor.spec import LossSpec
from advisor.task import Head, TaskDescription, TaskError

__version__ = "0.1.0"

# Heavier entry points import on first use, so `import advisor` stays light for users of the catalog alone.
_LAZY = {
    "candidates": ("advisor.rules", "candidates"),
    "recommend": ("advisor.core", "recommend"),
    "Recommendation": ("advisor.recommendation", "Recommendation"),
    "profile": ("advisor.profiling", "profile"),
    "ProfileError": ("advisor.profiling", "ProfileError"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'advisor' has no attribute {name!r}")


__all__ = [  # noqa: RUF022 (lazy names listed too)
    "AdvisorError",
    "Head",
    "ProfileError",
    "TaskDescription",
    "TaskError",
    "Recommendation",
    "candidates",
    "profile",
    "recommend",
    "CatalogLoss",
    "FieldViolation",
    "LossInputError",
    "LossParams",
    "LossSpec",
    "SpecError",
    "__version__",
    "build_loss",
    "catalog",
    "get_loss_info",
    "loss_names",
    "normalize_spec",
    "register_loss",
    "spec_json_schema",
]
