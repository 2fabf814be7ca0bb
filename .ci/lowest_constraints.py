"""Print pip constraints that pin every dependency of the package at the lower bound of its range.

``make test-lowest`` installs the package with them (``pip install -c``), so CI tests the floors that
pyproject.toml states. Usage: ``python .ci/lowest_constraints.py [EXTRA ...]`` (the base dependencies, plus
each named extra's, recursively for ``loss-advisor[...]``). torch is left out: the only CPU build this
project's machines reach is the one the Makefile pins, and a PyPI torch pulls gigabytes of CUDA libraries.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    from pip._vendor import tomli as tomllib

UNPINNED = {"torch"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*([^;]*)")


def requirements(project: dict, extras: list[str]) -> list[str]:
    """The base dependencies and those of each extra, following ``loss-advisor[...]`` references."""
    found, pending, seen = list(project["dependencies"]), list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in project["optional-dependencies"][extra]:
            name, nested, _ = REQUIREMENT.match(requirement).groups()
            if name == project["name"]:
                pending += [e.strip() for e in nested.split(",")]
            else:
                found.append(requirement)
    return found


def floors(project: dict, extras: list[str]) -> dict[str, str]:
    """``name -> lowest allowed version`` (``>=``, ``~=`` or ``==``) of each requirement that states one."""
    pins = {}
    for requirement in requirements(project, extras):
        name, _, specifier = REQUIREMENT.match(requirement).groups()
        lower = re.search(r"(?:>=|==|~=)\s*([^,\s]+)", specifier)
        if lower and name.lower() not in UNPINNED:
            pins[name.lower()] = lower.group(1)
    return pins


def main() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    for name, version in sorted(floors(project, sys.argv[1:]).items()):
        print(f"{name}=={version}")


if __name__ == "__main__":
    main()
