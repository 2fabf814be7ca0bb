"""``watch``: a loss wrapper that checks its first calls and then gets out of the way."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from advisor.doctor.findings import Finding
from advisor.doctor.runtime import LossDoctorWarning, build, check_views, views


class WatchedLoss(nn.Module):
    """Calls ``loss`` unchanged; on its first ``calls`` calls it also runs :func:`advisor.doctor.check` and
    warns (:class:`LossDoctorWarning`) once per finding id (and head).

    After the window ``forward`` only tests a Python flag and calls the loss: no check runs, nothing is read
    from the device, so there is no synchronisation. The checks run outside ``torch.compile``
    (``torch.compiler.disable``), so a compiled training step breaks its graph only during the window and
    recompiles once when the window closes. ``findings`` keeps everything reported; ``checked`` counts the
    calls checked. A wrapped Module is a submodule (its state_dict keys gain the prefix ``loss.``).
    """

    def __init__(self, loss: Any, calls: int = 20) -> None:
        super().__init__()
        if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
            raise ValueError(f"calls must be an int >= 0, got {calls!r}")
        self.loss = build(loss)
        self._views = views(self.loss)  # resolved once: a TypeError here names what the doctor accepts
        self.calls = calls
        self.checked = 0
        self.watching = calls > 0
        self.findings: list[Finding] = []
        self._warned: set[tuple[str, str | None]] = set()

    def forward(self, input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        if self.watching:
            self._inspect(input, target)
        return self.loss(input, target, *args, **kwargs)

    @torch.compiler.disable
    def _inspect(self, input: Any, target: Any) -> None:
        self.checked += 1
        if self.checked >= self.calls:
            self.watching = False
        try:
            found = check_views(self._views, input, target)
        except Exception as exc:  # the doctor must never stop a training run
            key = ("doctor-failed", None)
            if key not in self._warned:
                self._warned.add(key)
                warnings.warn(
                    f"loss doctor could not check this call ({type(exc).__name__}: {exc})",
                    LossDoctorWarning,
                    stacklevel=2,
                )
            return
        for finding in found:
            key = (finding.id, finding.head)
            if key in self._warned:
                continue
            self._warned.add(key)
            self.findings.append(finding)
            warnings.warn(str(finding), LossDoctorWarning, stacklevel=2)

    def extra_repr(self) -> str:
        return f"calls={self.calls}, checked={self.checked}"


def watch(loss: Any, calls: int = 20) -> WatchedLoss:
    """Wrap ``loss`` (anything :func:`advisor.doctor.check` accepts) so its first ``calls`` calls are checked.

    Examples
    --------
    >>> import torch
    >>> criterion = watch(torch.nn.CrossEntropyLoss(), calls=20)
    >>> value = criterion(torch.randn(8, 4), torch.randint(0, 4, (8,)))  # warns once per finding
    """
    return WatchedLoss(loss, calls)
