"""Packaging: what the wheel ships, installed-layout rule lookup, optional extras, dependency floors, and the
start-up of commands that need no torch."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from advisor import _catalog_json
from advisor._extras import EXTRA_MODULES, MissingExtraError, extra_of, requires_extra

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = sorted({module for modules in EXTRA_MODULES.values() for module in modules})
# Imported first by a child process: every optional module then fails to import, as in a base install.
BLOCK_OPTIONAL = textwrap.dedent(f"""
    import importlib.abc, sys

    class _Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {OPTIONAL!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

    sys.meta_path.insert(0, _Absent())
""")


def _python(code: str, *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80", **(env or {})})  # fmt: skip


def _cli_in_process(*commands: list[str]) -> str:
    """Code that runs ``advisor-cli`` once per command in one process, then prints the heavy modules loaded."""
    return textwrap.dedent(f"""
        import json, sys
        from advisor.cli import main
        for args in {list(commands)!r}:
            sys.argv = ["advisor-cli", *args]
            try:
                main()
            except SystemExit as exc:
                assert not exc.code, (args, exc.code)
        heavy = ("torch", "pandas", "sklearn", "grpc", "matplotlib", "pyarrow")
        print("HEAVY=" + json.dumps(sorted(m for m in heavy if m in sys.modules)))
    """)


def _setuptools_can_build() -> bool:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0]) >= 77  # build-system.requires
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(
    not _setuptools_can_build(), reason="needs setuptools>=77 here to build without isolation"
)
def test_wheel_ships_rules_proto_catalog_and_py_typed_and_a_target_install_loads_the_rules(tmp_path):
    # Build from a copy of what the build reads, so stale files in a build/ folder cannot reach the wheel.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("advisor", "lossadvisor", "rules", "protos"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    built = subprocess.run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
                           capture_output=True, text=True, timeout=240)  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = tmp_path.glob("loss_advisor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    expected = {"advisor/py.typed", "advisor/losses/catalog.json", "advisor/rules/builtin/README.md"}
    expected |= {f"advisor/rules/builtin/{p.name}" for p in (ROOT / "rules").glob("*.yaml")}
    expected |= {
        f"advisor/protos/{p.relative_to(ROOT / 'protos')}" for p in (ROOT / "protos").rglob("*.proto")
    }
    expected |= {
        str(p.relative_to(ROOT)) for name in ("advisor", "lossadvisor") for p in (ROOT / name).rglob("*.py")
    }
    assert "advisor/protos/lossadvisor/v1/advisor.proto" in expected
    assert sorted(expected - names) == []
    assert not [n for n in names if n.startswith(("rules/", "protos/", "tests/")) or "/share/" in n]

    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:")]  # fmt: skip
    base = [line for line in requires if "extra ==" not in line]
    assert not [line for line in base if re.search(r"grpc|protobuf|matplotlib|pyarrow|prometheus", line)]
    assert all("extra ==" in line for line in requires if "grpcio-tools" in line)

    target = tmp_path / "target"
    installed = subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    probe = _python(
        textwrap.dedent("""
            import json
            from importlib import resources
            import advisor
            from advisor.rules import load_rules
            from advisor.rules.loader import BUILTIN_RULES_DIR
            proto = resources.files("advisor").joinpath("protos", "lossadvisor", "v1", "advisor.proto")
            print(json.dumps({"advisor": advisor.__file__, "rules_dir": str(BUILTIN_RULES_DIR),
                              "rules": len(load_rules().rules), "proto": "service LossAdvisor" in proto.read_text()}))
        """),
        cwd=away,
        env={"PYTHONPATH": str(target)},
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    from advisor.rules import load_rules

    assert found["advisor"].startswith(str(target))
    assert found["rules_dir"] == str(target / "advisor" / "rules" / "builtin")
    assert found["rules"] == len(load_rules().rules) and found["proto"]


def test_every_code_package_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for name in ("advisor", "lossadvisor")
             for path in (ROOT / name).rglob("*.py")}  # fmt: skip
    assert sorted(found - listed) == [], "add these to [tool.setuptools] packages in pyproject.toml"


def test_checkout_reads_the_top_level_rules_folder():
    from advisor.rules.loader import BUILTIN_RULES_DIR

    assert BUILTIN_RULES_DIR == ROOT / "rules"  # editable installs and a plain checkout: the one copy


def test_dependency_floors_match_the_generated_grpc_code():
    tomllib = pytest.importorskip("tomllib")
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["server"]
    floors = {m.group(1): m.group(2) for m in (re.match(r"([\w-]+)>=([\w.]+)", r) for r in extra) if m}
    pb2 = (ROOT / "lossadvisor/v1/advisor_pb2.py").read_text()
    gencode = re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+)", pb2
    )
    assert gencode, "advisor_pb2.py no longer checks the protobuf runtime version"
    assert floors["protobuf"] == ".".join(gencode.groups()), "protobuf's floor must be the gencode version"
    grpc_generated = re.search(
        r"GRPC_GENERATED_VERSION = '([\d.]+)'", (ROOT / "lossadvisor/v1/advisor_pb2_grpc.py").read_text()
    )
    assert grpc_generated and floors["grpcio"] == grpc_generated.group(1)
    test = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert f"grpcio-tools=={grpc_generated.group(1)}" in test  # the generator that wrote lossadvisor/v1


def _without_schemas(losses: list[dict]) -> list[dict]:
    """The entries with each parameter schema cut to names and defaults (pydantic releases word it apart)."""
    return [{**{k: v for k, v in e.items() if k != "params_schema"},
             "params": {n: p.get("default") for n, p in e["params_schema"]["properties"].items()}}
            for e in losses]  # fmt: skip


def test_stored_catalog_matches_the_registry():
    from advisor.losses import registry

    stored = _catalog_json.stored()
    assert stored is not None, "advisor/losses/catalog.json is missing: run `make catalog`"
    assert stored["sources"] == _catalog_json.sources_hash(), "catalog.json is stale: run `make catalog`"
    live = json.loads(json.dumps(_catalog_json.generate()))
    if stored["pydantic"] == live["pydantic"]:
        assert stored == live, "advisor/losses/catalog.json is stale: run `make catalog`"
    else:  # e.g. `make test-lowest`: the file was written under another pydantic
        assert _without_schemas(stored["losses"]) == _without_schemas(live["losses"])
    assert _catalog_json.read() == stored["losses"]
    assert registry.ENTRY_POINT_GROUP == _catalog_json.ENTRY_POINT_GROUP


def test_stored_catalog_is_skipped_when_plugins_or_other_sources_are_installed(monkeypatch):
    assert _catalog_json.read() is not None
    monkeypatch.setattr(_catalog_json, "entry_points", lambda group: ("a third-party loss",))
    assert _catalog_json.read() is None  # the registry then lists the plugins' losses too
    monkeypatch.undo()
    monkeypatch.setattr(_catalog_json, "sources_hash", lambda: "edited since `make catalog`")
    assert _catalog_json.read() is None


def test_listing_help_and_version_import_no_torch_and_print_plain_text():
    commands = [["--help"], ["-h"], ["--version"], ["losses"], ["losses", "focal"], ["losses", "--json"],
                ["serve", "--help"], ["recommend", "--help"], ["spec", "--help"], ["rules", "--help"]]  # fmt: skip
    result = _python(_cli_in_process(*commands))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "HEAVY=[]"
    assert "<bool>" not in result.stdout  # flags take no value
    shown = _python(_cli_in_process(["losses"], ["losses", "focal"], ["losses", "dice"]))
    assert "``" not in shown.stdout and ":meth:`" not in shown.stdout  # docstring markup shown as plain text
    assert "alpha is always a per-class list" in " ".join(shown.stdout.split())
    from advisor.cli import SERVE_ENV

    flat = " ".join(result.stdout.split())
    assert all(f"{variable} (--{option})" in flat for option, variable in SERVE_ENV.items())


def test_base_install_builds_losses_recommends_and_names_the_missing_extra():
    base = _python(BLOCK_OPTIONAL + textwrap.dedent("""
        import advisor, torch
        loss = advisor.build_loss({"loss": "focal", "params": {"gamma": 2.0}})
        assert float(loss(torch.randn(8, 3), torch.randint(0, 3, (8,)))) > 0
        result = advisor.recommend("client_examples/data/churn.csv", target="churned", trials=False)
        assert result.best().spec.loss
        try:
            import advisor.service.server
        except ImportError as exc:
            print(type(exc).__name__, exc)
    """))  # fmt: skip
    assert base.returncode == 0, base.stderr[-2000:]
    assert "MissingExtraError the gRPC service (advisor.service) needs the server extra" in base.stdout

    cli = _python(
        BLOCK_OPTIONAL
        + "import sys; sys.argv = ['advisor-cli', 'serve']\nfrom advisor.cli import main\nmain()"
    )
    assert cli.returncode == 2
    assert cli.stderr.strip() == (
        "error: advisor-cli serve needs the server extra: pip install 'loss-advisor[server]' (no module named 'grpc')"
    )
    listing = _python(BLOCK_OPTIONAL + _cli_in_process(["losses"], ["rules", "list"]))
    assert listing.returncode == 0, listing.stderr[-2000:]


def test_requires_extra_names_the_extra_and_lets_other_errors_through():
    assert extra_of("grpc_health.v1") == "server" and extra_of("matplotlib.figure") == "report"
    assert extra_of("numpy") is None
    message = r"^the chart needs the report extra: pip install 'loss-advisor\[report\]'$"
    with pytest.raises(MissingExtraError, match=message), requires_extra("report", "the chart"):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")
    relabelled = r"^the CLI needs the server extra"
    with pytest.raises(MissingExtraError, match=relabelled), requires_extra("server", "the CLI"):
        raise MissingExtraError("the service", "server", "grpc")
    with pytest.raises(ModuleNotFoundError, match="numpy"), requires_extra("server", "the service"):
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")  # not optional: a real error
