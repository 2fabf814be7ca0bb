"""Optional dependencies: which extra brings a module, and the error that names the extra to install.

The base install (the catalog, ``recommend()``, ``advisor-cli``) needs none of them; ``pip install
'loss-advisor[server]'`` brings the gRPC service and client, ``[report]`` the report's charts, ``[ray]`` the
Ray executor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# Top-level import names of each extra's distributions (protobuf and googleapis-common-protos are `google`).
EXTRA_MODULES = {
    "server": ("grpc", "grpc_status", "grpc_health", "grpc_reflection", "google", "prometheus_client",
               "pyarrow"),
    "report": ("matplotlib",),
    "ray": ("ray",),
}  # fmt: skip


class MissingExtraError(ModuleNotFoundError):
    """A feature whose optional dependencies are not installed; the message says which extra brings them."""

    def __init__(self, feature: str, extra: str, module: str | None = None) -> None:
        super().__init__(
            f"{feature} needs the {extra} extra: pip install 'loss-advisor[{extra}]'", name=module
        )
        self.feature = feature
        self.extra = extra


def extra_of(module: str | None) -> str | None:
    """The extra whose distributions provide ``module`` (a dotted import name), or None."""
    root = (module or "").partition(".")[0]
    return next((extra for extra, roots in EXTRA_MODULES.items() if root in roots), None)


@contextlib.contextmanager
def requires_extra(extra: str, feature: str) -> Iterator[None]:
    """Imports inside the block that fail for want of ``extra`` raise :class:`MissingExtraError` for ``feature``."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.extra if isinstance(exc, MissingExtraError) else extra_of(exc.name)) != extra:
            raise
        raise MissingExtraError(feature, extra, exc.name) from exc
