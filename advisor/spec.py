"""The loss spec: the serialized form of a configured loss, the product's output.

A spec is plain JSON data, never code: ``{"spec_version": 1, "loss": "focal", "params": {"gamma": 2.0}}``.
Only names in the loss registry can be built (see :func:`advisor.build_loss`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from advisor._text import shorten
from advisor.errors import AdvisorError, FieldViolation, SpecError

SPEC_VERSION = 1


class LossSpec(BaseModel):
    """A registered loss name and its parameters.

    Parameters
    ----------
    spec_version : int
        Format version of the spec; currently always 1.
    loss : str
        A canonical name from the loss registry (``advisor-cli losses`` lists them).
    params : dict
        Parameters of that loss; omitted ones take the documented defaults. A ``multi_task`` spec carries
        ``{"heads": {name: spec, ...}, "weighting": {...}}`` here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec_version: Literal[1] = Field(SPEC_VERSION, description="Format version of the spec.")
    loss: str = Field(description="Canonical name of a registered loss.", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters of the loss.")

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialize the spec as JSON text."""
        return self.model_dump_json(indent=indent)


SpecLike = LossSpec | Mapping[str, Any] | str


def parse_spec(spec: SpecLike, *, field: str = "spec") -> LossSpec:
    """Read a spec from a :class:`LossSpec`, a mapping or JSON text; check its envelope, not its params.

    Raises
    ------
    SpecError
        For malformed JSON, a missing or mistyped field, an unknown top-level field or a wrong version.
    """
    if isinstance(spec, LossSpec):
        return spec
    if isinstance(spec, str | bytes):
        spec = loads_json(spec, field=field, error=SpecError)
    check_depth(spec, field=field, error=SpecError)
    if not isinstance(spec, Mapping):
        raise SpecError(
            FieldViolation(
                field, f"expected a JSON object with 'loss' and 'params', got {type(spec).__name__}"
            )
        )
    try:
        return LossSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise SpecError(violations_from_pydantic(exc, prefix=field)) from None


MAX_JSON_DEPTH = 32  # a spec or task description nests a few levels; a multi_task spec a few more


def loads_json(text: str | bytes, *, field: str, error: type[AdvisorError]) -> Any:
    """Parsed JSON; malformed text raises ``error`` naming the field, line and column.

    ``NaN`` and ``Infinity`` are refused (they are not JSON, and serialise back as ``null``), and so is nesting
    deeper than the parser allows; callers bound the depth with :func:`check_depth`.
    """

    def refuse(constant: str) -> None:
        raise error(
            FieldViolation(field, f"non-finite number {constant} is not allowed; give a finite number")
        )

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise error(FieldViolation(field, message)) from None
    except RecursionError:  # nested deeper than the parser itself allows
        raise error(FieldViolation(field, f"nested deeper than {MAX_JSON_DEPTH} levels")) from None


def check_depth(value: Any, *, field: str, error: type[AdvisorError]) -> None:
    """Raise ``error`` when containers nest deeper than :data:`MAX_JSON_DEPTH` (checked without recursion, so
    a hostile 100,000-deep value cannot hit Python's recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise error(FieldViolation(field, f"nested deeper than {MAX_JSON_DEPTH} levels"))
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, Mapping) else item)
            )


def violations_from_pydantic(exc: ValidationError, *, prefix: str) -> list[FieldViolation]:
    """Turn pydantic's errors into field violations that name the path, the bad value and what is allowed."""
    violations = []
    for error in exc.errors(include_url=False):
        path = ".".join(part for part in (prefix, *(str(loc) for loc in error["loc"])) if part)
        nested = error.get("ctx", {}).get("error")
        if isinstance(nested, AdvisorError):  # a nested spec (multi_task head) already named its fields
            violations += [
                FieldViolation(f"{path}.{v.field}".rstrip("."), v.description) for v in nested.violations
            ]
            continue
        if error["type"] == "extra_forbidden":
            message = f"unknown field (value {error['input']!r})"
        elif error["type"] == "missing":
            message = "required field is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
            if not isinstance(error["input"], Mapping):  # a whole object is too long to echo
                message = f"got {shorten(repr(error['input']), 80)}: {message}"
        violations.append(FieldViolation(path, message))
    return violations
