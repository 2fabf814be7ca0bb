"""The errors Loss Advisor raises: on bad input, and when a worker running trials dies.

Every error is a ``ValueError`` subclass so callers that only know the standard library still catch it, and
each carries machine-readable field violations that the gRPC face turns into ``BadRequest`` details.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FIELD = 200  # characters of a violation's field path
MAX_DESCRIPTION = 500  # characters of its description


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its dotted path and what is wrong with it (value and what is allowed)."""

    field: str
    description: str

    def __post_init__(self) -> None:
        # Echoed input can be arbitrarily long (a 100 KB option string); messages and gRPC trailers are not.
        for name, limit in (("field", MAX_FIELD), ("description", MAX_DESCRIPTION)):
            text = getattr(self, name)
            if len(text) > limit:
                object.__setattr__(self, name, text[: limit - 3] + "...")

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class AdvisorError(ValueError):
    """Base class of every input error Loss Advisor raises."""

    def __init__(self, violations: list[FieldViolation] | FieldViolation | str) -> None:
        if isinstance(violations, str):
            violations = [FieldViolation("", violations)]
        elif isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations: list[FieldViolation] = violations
        super().__init__("; ".join(str(v) for v in violations))

    def __reduce__(self) -> tuple[type, tuple[list[FieldViolation]]]:
        # Pickled with its violations (a worker process hands errors back): the default keeps only the message.
        return (type(self), (self.violations,))


class SpecError(AdvisorError):
    """A loss spec that cannot be built: unknown loss, unknown or invalid parameter, malformed JSON."""


class LossInputError(AdvisorError):
    """Tensors passed to a loss whose shapes or values do not fit its documented input and target formats."""


class WorkerLostError(RuntimeError):
    """The process running a call's trial work died (killed, out of memory, a lost Ray node): that call's work
    is lost and it can be retried; other calls are unaffected. Not an input error."""
