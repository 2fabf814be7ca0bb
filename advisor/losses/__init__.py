"""The loss catalog: every canonical loss as a functional form and a thin ``torch.nn.Module``.

Importing this package registers the built-in losses; it needs only torch, pydantic and auraloss (no rules,
trials or service).
"""

from advisor.losses import (
    audio,
    classification,
    compound,
    distribution,
    multitask,
    regression,
    segmentation,
)
from advisor.losses._base import (
    INPUT_FORMATS,
    TARGET_FORMATS,
    CatalogLoss,
    LossParams,
    ReductionParams,
    TensorFormat,
    checks,
    checks_enabled,
    reduce_loss,
)
from advisor.losses.registry import (
    HEAD_TYPES,
    LossInfo,
    build_loss,
    catalog,
    get_loss_info,
    loss_names,
    normalize_spec,
    register_loss,
    spec_json_schema,
    validate_params,
)

__all__ = [
    "HEAD_TYPES",
    "INPUT_FORMATS",
    "TARGET_FORMATS",
    "CatalogLoss",
    "LossInfo",
    "LossParams",
    "ReductionParams",
    "TensorFormat",
    "audio",
    "build_loss",
    "catalog",
    "checks",
    "checks_enabled",
    "classification",
    "compound",
    "distribution",
    "get_loss_info",
    "loss_names",
    "multitask",
    "normalize_spec",
    "reduce_loss",
    "register_loss",
    "regression",
    "segmentation",
    "spec_json_schema",
    "validate_params",
]
