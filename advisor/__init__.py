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

__version__ = "0.1.0"

__all__ = [
    "AdvisorError",
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
