"""The loss registry: which names build, their schemas and metadata, and ``build_loss``.

Only registered names build; a spec never carries an import path. Users add losses with
:func:`register_loss` or, from an installed package, through the ``loss_advisor.losses`` entry-point group
(each entry point names a module whose import registers its losses).
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import ValidationError

from advisor.errors import FieldViolation, SpecError
from advisor.heads import HEAD_TYPES
from advisor.losses._base import CatalogLoss, LossParams
from advisor.spec import LossSpec, SpecLike, parse_spec, violations_from_pydantic

ENTRY_POINT_GROUP = "loss_advisor.losses"


@dataclass(frozen=True)
class LossInfo:
    """A registry entry: the Module class, its parameter schema and what it is for."""

    name: str
    module: type[CatalogLoss]
    heads: tuple[str, ...]
    input: str
    target: str
    reference: str
    builtin: bool

    @property
    def params_model(self) -> type[LossParams]:
        return self.module.Params

    @property
    def summary(self) -> str:
        return self.description.splitlines()[0]

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.module.__doc__ or self.name)

    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready metadata, as ``advisor-cli losses --json`` and ``ListLosses`` show it."""
        return {
            "name": self.name,
            "summary": self.summary,
            "heads": list(self.heads),
            "input": self.input,
            "target": self.target,
            "reference": self.reference,
            "builtin": self.builtin,
            "params_schema": self.params_schema(),
        }


_REGISTRY: dict[str, LossInfo] = {}
_entry_points_loaded = False
LossClass = TypeVar("LossClass", bound=type[CatalogLoss])


def register_loss(
    name: str,
    *,
    heads: tuple[str, ...] | list[str],
    input: str,
    target: str,
    reference: str,
    replace: bool = False,
    _builtin: bool = False,
) -> Callable[[LossClass], LossClass]:
    """Class decorator that adds a :class:`CatalogLoss` subclass to the registry under ``name``.

    Parameters
    ----------
    name : str
        The spec name; lowercase letters, digits and underscores.
    heads : sequence of str
        Head types the loss serves (see ``HEAD_TYPES``).
    input, target : str
        The expected input and target formats, in words with shapes.
    reference : str
        The paper or documentation the loss comes from.
    replace : bool, default False
        Allow replacing an already registered name (otherwise that is an error).
    """
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"loss name {name!r}: use lowercase letters, digits and underscores")
    unknown = sorted(set(heads) - set(HEAD_TYPES))
    if unknown:
        raise ValueError(f"loss {name!r}: unknown head types {unknown}; allowed: {list(HEAD_TYPES)}")

    def decorate(cls: LossClass) -> LossClass:
        if not (isinstance(cls, type) and issubclass(cls, CatalogLoss)):
            raise TypeError(f"loss {name!r}: register a CatalogLoss subclass, got {cls!r}")
        if not issubclass(getattr(cls, "Params", object), LossParams):
            raise TypeError(f"loss {name!r}: {cls.__name__}.Params must subclass LossParams")
        if name in _REGISTRY and not replace:
            raise ValueError(f"loss {name!r} is already registered; pass replace=True to override it")
        cls.loss_name = name
        _REGISTRY[name] = LossInfo(name, cls, tuple(heads), input, target, reference, _builtin)
        return cls

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry_point.load()
        except Exception as exc:  # a broken plugin must not take the catalog down with it
            warnings.warn(f"loss plugin {entry_point.name!r} failed to load: {exc}", stacklevel=2)


def loss_names() -> list[str]:
    """Every registered loss name, sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def catalog() -> list[LossInfo]:
    """Every registry entry, sorted by name."""
    return [_REGISTRY[name] for name in loss_names()]


def get_loss_info(name: str, *, field: str = "loss") -> LossInfo:
    """The entry registered under ``name``; a :class:`SpecError` with the closest names otherwise."""
    _load_entry_points()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(str(name), _REGISTRY, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise SpecError(
        FieldViolation(
            field, f"unknown loss {name!r}{hint} (`advisor-cli losses` lists the {len(_REGISTRY)} names)"
        )
    )


def validate_params(name: str, params: Mapping[str, Any], *, field: str = "params") -> LossParams:
    """Validate ``params`` against the schema of loss ``name``; errors name the loss, parameter and value."""
    info = get_loss_info(name)
    try:
        return info.params_model.model_validate(dict(params))
    except ValidationError as exc:
        known = list(info.params_model.model_fields)
        violations = []
        for violation in violations_from_pydantic(exc, prefix=field):
            description = f"loss {name!r}: {violation.description}"
            parameter = violation.field.removeprefix(f"{field}.")
            if (
                "unknown field" in violation.description and "." not in parameter
            ):  # not one inside a nested spec
                close = difflib.get_close_matches(parameter, known, n=2, cutoff=0.5)
                hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
                description += f"; {hint}allowed parameters: {', '.join(known)}"
            violations.append(FieldViolation(violation.field, description))
        raise SpecError(violations) from None


def normalize_spec(spec: SpecLike) -> LossSpec:
    """The spec with every parameter validated and defaults filled in (the form ``module.spec()`` returns)."""
    parsed = parse_spec(spec)
    params = validate_params(parsed.loss, parsed.params)
    return LossSpec(loss=parsed.loss, params=params.model_dump(mode="json"))


def normalize_nested_spec(spec: SpecLike, *, field: str, owner: str, refuse: Collection[str]) -> LossSpec:
    """A spec inside another loss's parameters (a ``multi_task`` head, a ``compound`` term), normalized.

    Its violations are re-rooted under ``field`` (``heads.label.params.gamma``). Refused: the losses in
    ``refuse`` (composites that do not nest inside ``owner``) and reduction 'none', which leaves the owner no
    scalar to weight.
    """

    def rooted(violations: list[FieldViolation]) -> SpecError:
        return SpecError(
            [FieldViolation(f"{field}.{v.field}".rstrip("."), v.description) for v in violations]
        )

    try:
        parsed = parse_spec(spec)
        if parsed.loss in refuse:
            raise SpecError(
                FieldViolation(
                    "loss",
                    f"{parsed.loss} cannot be nested inside {owner}; allowed: any other registered loss",
                )
            )
        nested = normalize_spec(parsed)
    except SpecError as exc:
        raise rooted(exc.violations) from None
    if nested.params.get("reduction") == "none":
        raise rooted(
            [
                FieldViolation(
                    "params.reduction",
                    f"{nested.loss}: reduction 'none' gives no scalar to weight; use 'mean' or 'sum'",
                )
            ]
        )
    return nested


def build_loss(spec: SpecLike) -> CatalogLoss:
    """Build the ``torch.nn.Module`` a spec describes.

    Parameters
    ----------
    spec : LossSpec, dict or str
        A spec object, its dict form, or JSON text.

    Raises
    ------
    SpecError
        Unknown loss (with the closest names), unknown or invalid parameters, malformed JSON.

    Examples
    --------
    >>> build_loss('{"loss": "huber", "params": {"delta": 2.0}}')
    HuberLoss(delta=2.0, reduction='mean')
    """
    parsed = parse_spec(spec)
    info = get_loss_info(parsed.loss)
    return info.module(validate_params(parsed.loss, parsed.params))


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of a loss spec: one alternative per registered loss, each with its parameter schema."""
    alternatives, definitions = [], {}
    for info in catalog():
        params_schema = info.params_model.model_json_schema(ref_template="#/$defs/{model}")
        definitions.update(params_schema.pop("$defs", {}))
        alternatives.append(
            {
                "title": info.name,
                "type": "object",
                "properties": {
                    "spec_version": {"const": 1},
                    "loss": {"const": info.name},
                    "params": params_schema,
                },
                "required": ["loss"],
                "additionalProperties": False,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "LossSpec",
        "description": LossSpec.model_json_schema()["description"],
        "oneOf": alternatives,
        "$defs": definitions,
    }
