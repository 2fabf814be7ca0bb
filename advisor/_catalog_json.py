"""The built-in loss catalog as package data (``advisor/losses/catalog.json``), so that ``advisor-cli losses``
lists and shows losses without importing torch (about 2 s).

``make catalog`` (``python -m advisor._catalog_json``) writes the file from the live registry, with a hash of
the sources that define the catalog; tests/test_packaging.py fails when the file is stale, as it does for the
generated gRPC code. The file is used only while that hash matches the installed sources and no third-party
losses are installed (the ``loss_advisor.losses`` entry-point group); otherwise the command imports the
registry, so the listing is never out of date.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from advisor.losses import LossInfo

# advisor.losses.registry.ENTRY_POINT_GROUP (importing the registry imports torch; a test keeps them equal).
ENTRY_POINT_GROUP = "loss_advisor.losses"
PACKAGE = Path(__file__).parent
FILE = PACKAGE / "losses" / "catalog.json"
# What the registry's metadata and parameter schemas come from, relative to the package.
SOURCES = ("losses/*.py", "spec.py", "heads.py")


def entry(info: LossInfo) -> dict[str, Any]:
    """One loss as the file stores it: :meth:`LossInfo.as_dict` plus the full description."""
    return {**info.as_dict(), "description": info.description}


def sources_hash() -> str:
    """SHA-256 of the modules the catalog is defined in (their names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for pattern in SOURCES for p in PACKAGE.glob(pattern)):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def generate() -> dict[str, Any]:
    """The file's content from the live registry: every built-in loss, sorted by name, and what it came from.

    The pydantic version is recorded because its JSON Schema output differs slightly between releases."""
    from advisor.losses import catalog

    losses = [entry(info) for info in catalog() if info.builtin]
    return {"sources": sources_hash(), "pydantic": version("pydantic"), "losses": losses}


def stored() -> dict[str, Any] | None:
    """The file's content, or None when it is missing."""
    try:
        return json.loads(FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def read() -> list[dict[str, Any]] | None:
    """The stored entries; None when the file is missing or stale, or third-party losses are installed."""
    if entry_points(group=ENTRY_POINT_GROUP):
        return None
    content = stored()
    return content["losses"] if content and content["sources"] == sources_hash() else None


def main() -> None:
    FILE.write_text(json.dumps(generate(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FILE}")


if __name__ == "__main__":
    main()
