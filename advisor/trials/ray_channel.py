"""The actor a Ray call's head tasks share: progress events in, one cancel flag out.

Kept apart from the trial code and free of heavy imports, so that the actor's worker starts in milliseconds
(it never imports torch).
"""

from __future__ import annotations

from typing import Any


class Channel:
    """Progress events queued by head tasks until the driver drains them, and the call's cancel flag."""

    def __init__(self) -> None:
        self.events: list[tuple[int, Any]] = []
        self.is_cancelled = False

    def report(self, head_index: int, event: Any) -> None:
        self.events.append((head_index, event))

    def drain(self) -> list[tuple[int, Any]]:
        events, self.events = self.events, []
        return events

    def cancel(self) -> None:
        self.is_cancelled = True

    def cancelled(self) -> bool:
        return self.is_cancelled
