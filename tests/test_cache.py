"""The result cache (issue 14): the key, hits, LRU eviction, damaged files, several processes, what is never
stored, and the cache through the CLI and gRPC. Every cache file lives under tmp_path (tests/conftest.py turns
the default cache off for the whole suite)."""

from __future__ import annotations

import io
import json
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import advisor
import advisor.trials.executors
from advisor.cache import CACHE_ENV, ResultCache, cache_key, cache_path, default_path
from advisor.recommendation import Recommendation
from advisor.task import parse_task

ROOT = Path(__file__).resolve().parents[1]
CHURN = ROOT / "client_examples/data/churn.csv"
TASK = {"heads": [{"type": "binary", "class_histogram": [900, 100]}], "n_features": 8}
QUICK: dict[str, Any] = {"epochs": 2, "repeats": 2, "max_rows": 200}
# recommend()'s keyword arguments as its wrapper hands them to cache_key.
ARGUMENTS: dict[str, Any] = {"target": None, "task": None, "metric": None, "traits": None, "training": None,
                             "repeats": 2, "epochs": 2, "budget_s": 300.0, "race": True, "max_rows": 200,
                             "device": "cpu", "trials": True, "rule_dirs": None, "random_state": 0}  # fmt: skip


def _key(data: Any, description: bool = False, **changes: Any) -> str | None:
    return cache_key(data, {**ARGUMENTS, **changes}, description=description)


def _rules_only() -> Recommendation:
    """A real Recommendation, made in milliseconds (rules alone never touch the cache)."""
    return advisor.recommend(TASK, trials=False)


# ---------------------------------------------------------------------------------------------- the key


def test_the_default_is_off_in_the_test_suite_and_follows_the_environment(monkeypatch, tmp_path):
    assert cache_path(True) is None and cache_path(False) is None and cache_path("off") is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env.sqlite3"))
    assert cache_path(True) == tmp_path / "env.sqlite3"
    assert cache_path(tmp_path / "given.sqlite3") == tmp_path / "given.sqlite3"  # an explicit path wins
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # platformdirs' user cache folder on Linux
    if sys.platform.startswith("linux"):
        assert cache_path(True) == default_path() == tmp_path / "xdg/loss-advisor/results.sqlite3"


def test_the_key_is_the_same_for_the_same_inputs_in_another_process(tmp_path):
    frame = pd.read_csv(CHURN)
    keys = [_key(TASK, description=True), _key(str(CHURN), target="churned"), _key(frame, target="churned")]
    assert all(keys) and len(set(keys)) == 3
    code = (
        "import pandas as pd, tests.test_cache as t\n"
        "print(t._key(t.TASK, description=True)); print(t._key(str(t.CHURN), target='churned'))\n"
        "print(t._key(pd.read_csv(t.CHURN), target='churned'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == keys  # no per-process salt (hash randomisation, object ids)


def test_equal_inputs_in_different_forms_share_a_key():
    description = _key(TASK, description=True)
    assert _key(json.dumps(TASK), description=True) == description
    assert _key(parse_task(TASK), description=True) == description
    assert _key(io.BytesIO(CHURN.read_bytes())) == _key(CHURN) == _key(str(CHURN))  # the service's bytes
    x, y = np.arange(40.0).reshape(20, 2), np.array([0, 1] * 10)
    assert _key((x, y)) == _key((x.copy(), list(y))) == _key([x, y])
    frame = pd.read_csv(CHURN)
    assert _key(frame) == _key(frame.set_index(np.arange(len(frame)) + 7))  # the index is not read
    # Not part of the key: the budget is only a cap, and results it bound are never stored.
    assert _key(TASK, description=True, budget_s=5.0) == description


def test_the_key_changes_with_a_data_byte_an_option_a_rule_file_or_the_version(tmp_path, monkeypatch):
    copy = tmp_path / "churn.csv"
    shutil.copy(CHURN, copy)
    base = _key(copy, target="churned")
    raw = bytearray(copy.read_bytes())
    raw[-2] = ord("0") if raw[-2] != ord("0") else ord("1")  # the last row's last value
    copy.write_bytes(bytes(raw))
    assert _key(copy, target="churned") != base
    frame = pd.read_csv(CHURN)
    changed = frame.copy()
    changed.loc[5, "age"] += 1
    assert _key(changed) != _key(frame) != _key(frame.astype({"senior_citizen": "float64"}))
    x, y = np.zeros((10, 2)), np.array([0, 1] * 5)
    assert _key((x, y)) != _key((x.astype("float32"), y)) != _key((x.reshape(5, 4), y[:5]))
    description = _key(TASK, description=True)
    other = {"heads": [{"type": "binary", "class_histogram": [899, 101]}], "n_features": 8}
    assert _key(other, description=True) != description
    for option, value in [("epochs", 3), ("repeats", 3), ("max_rows", 300), ("race", False), ("device", "cuda"),
                          ("random_state", 1), ("metric", "roc_auc"), ("training", {"epochs": 4}),
                          ("traits", {"*": {"calibration_needed": True}}), ("target", "label")]:  # fmt: skip
        assert _key(TASK, description=True, **{option: value}) != description, option
    rules = tmp_path / "rules"
    rules.mkdir()
    user_file = rules / "mine.yaml"
    shutil.copy(next((ROOT / "rules").glob("*.yaml")), user_file)
    with_rules = _key(TASK, description=True, rule_dirs=[rules])
    assert with_rules != description
    user_file.write_text(user_file.read_text() + "\n# edited\n")
    assert _key(TASK, description=True, rule_dirs=[rules]) != with_rules
    monkeypatch.setenv("LOSS_ADVISOR_RULES", str(rules))  # folders from the environment count too
    assert _key(TASK, description=True) != description
    monkeypatch.delenv("LOSS_ADVISOR_RULES")
    monkeypatch.setattr(advisor, "__version__", "99.0.0")
    assert _key(TASK, description=True) != description


def test_inputs_without_a_stable_fingerprint_run_uncached(tmp_path):
    assert _key(tmp_path / "missing.csv") is None  # recommend() then reports the missing file itself
    assert _key(object()) is None
    assert _key(TASK, description=True, traits={"*": {"label_noise": object()}}) is None
    with pytest.raises(advisor.AdvisorError, match="no such file"):
        advisor.recommend(str(tmp_path / "missing.csv"), cache=tmp_path / "c.sqlite3", **QUICK)


# ---------------------------------------------------------------------------------------------- hits


def test_a_hit_is_the_same_recommendation_with_its_original_time_and_runs_no_trials(tmp_path, monkeypatch):
    path = tmp_path / "cache.sqlite3"
    first = advisor.recommend(TASK, cache=path, **QUICK)
    assert first.cache is not None and (first.cache.hit, first.cache.stored) == (False, True)
    assert first.cache.path == str(path) and path.is_file()

    def no_trials(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cache hit ran trials")

    monkeypatch.setattr(advisor.trials.executors, "evaluate_head", no_trials)
    second = advisor.recommend(TASK, cache=path, **QUICK)
    assert second.cache.hit and second.cache.key == first.cache.key
    assert second.cache.created_at == first.cache.created_at
    assert second.model_copy(update={"cache": None}) == first.model_copy(update={"cache": None})
    # The budget does not enter the key, progress and cancel never do; another option is another entry.
    assert advisor.recommend(TASK, cache=path, **QUICK, budget_s=100, progress=print, cancel=bool).cache.hit
    with pytest.raises(AssertionError, match="ran trials"):
        advisor.recommend(TASK, cache=path, **{**QUICK, "epochs": 3})
    with pytest.raises(AssertionError, match="ran trials"):
        advisor.recommend(TASK, cache=False, **QUICK)


def test_csv_data_hits_and_calls_without_trials_leave_the_cache_alone(tmp_path):
    path = tmp_path / "cache.sqlite3"
    options = {"target": "churned", "epochs": 1, "repeats": 2, "max_rows": 200}
    first = advisor.recommend(str(CHURN), cache=path, **options)
    again = advisor.recommend(pd.read_csv(CHURN), cache=path, **options)  # a DataFrame is another key
    assert not first.cache.hit and not again.cache.hit
    assert advisor.recommend(CHURN, cache=path, **options).cache.hit
    rules = advisor.recommend(TASK, cache=tmp_path / "rules.sqlite3", trials=False)
    assert rules.cache is None and not (tmp_path / "rules.sqlite3").exists()


# ---------------------------------------------------------------------------------------------- never stored


def test_cancelled_or_time_capped_trials_are_not_stored(tmp_path):
    path = tmp_path / "cache.sqlite3"
    cancelled = advisor.recommend(TASK, cache=path, cancel=lambda: True, **QUICK)
    assert cancelled.heads[0].stopped_by == "cancelled"
    assert cancelled.cache is not None and not cancelled.cache.stored
    assert not advisor.recommend(TASK, cache=path, cancel=lambda: True, **QUICK).cache.hit
    store, result = ResultCache(path), _rules_only()
    head = result.heads[0]
    for changes in ({"stopped_by": "time"}, {"cut_short": [head.top.name]}):
        capped = result.model_copy(update={"heads": [head.model_copy(update=changes)]})
        assert not store.put(f"capped-{changes}", capped).cache.stored
        assert store.get(f"capped-{changes}") is None
    assert store.put("whole", result).cache.stored and store.get("whole").cache.hit


# ---------------------------------------------------------------------------------------------- bounds


def test_least_recently_used_entries_are_evicted_at_the_bounds(tmp_path):
    result = _rules_only()
    store = ResultCache(tmp_path / "lru.sqlite3", max_entries=2)
    store.put("a", result)
    store.put("b", result)
    assert store.get("a") is not None  # a hit counts as a use: "b" is now the least recently used
    store.put("c", result)
    assert [k for k in "abc" if store.get(k) is not None] == ["a", "c"]
    size = len(result.model_dump_json().encode())
    small = ResultCache(tmp_path / "bytes.sqlite3", max_bytes=int(size * 2.5))
    for key in "xyz":
        small.put(key, result)
    assert [k for k in "xyz" if small.get(k) is not None] == ["y", "z"]
    tiny = ResultCache(tmp_path / "tiny.sqlite3", max_bytes=size // 2)
    assert not tiny.put("big", result).cache.stored  # larger than the whole bound: not stored


# ---------------------------------------------------------------------------------------------- damage


def test_a_garbage_cache_file_is_moved_aside_and_rebuilt(tmp_path):
    path = tmp_path / "cache.sqlite3"
    path.write_bytes(b"this is not a database\x00" * 200)
    result = advisor.recommend(TASK, cache=path, **QUICK)
    assert result.cache.stored and (tmp_path / "cache.sqlite3.corrupt").is_file()
    assert advisor.recommend(TASK, cache=path, **QUICK).cache.hit


def test_a_truncated_cache_file_never_fails_a_call(tmp_path):
    path = tmp_path / "cache.sqlite3"
    store, result = ResultCache(path), _rules_only()
    for index in range(60):
        store.put(f"key{index}", result)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    assert store.get("key59") is None  # damaged: moved aside, a fresh file answers
    assert (tmp_path / "cache.sqlite3.corrupt").is_file()
    assert store.put("after", result).cache.stored and store.get("after").cache.hit
    unreadable = ResultCache(tmp_path / "a-file" / "cache.sqlite3")
    (tmp_path / "a-file").write_text("a file where the cache folder should be")
    assert unreadable.get("x") is None and not unreadable.put("x", result).cache.stored


# ---------------------------------------------------------------------------------------------- processes


def _write_many(path: str, prefix: str, text: str, start: Any, count: int) -> None:
    result = Recommendation.model_validate_json(text)
    store = ResultCache(path)
    start.wait()
    for index in range(count):
        assert store.put(f"{prefix}{index}", result).cache.stored


def test_two_processes_write_the_same_cache_at_once(tmp_path):
    path, text, count = str(tmp_path / "shared.sqlite3"), _rules_only().model_dump_json(), 40
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=_write_many, args=(path, prefix, text, start, count)) for prefix in "pq"
    ]
    for writer in writers:
        writer.start()
    time.sleep(0.5)
    start.set()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0, 0]
    store = ResultCache(path)
    assert all(store.get(f"{prefix}{index}") is not None for prefix in "pq" for index in range(count))


# ---------------------------------------------------------------------------------------------- the CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "advisor", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)  # fmt: skip


def test_cli_cache_and_no_cache(tmp_path):
    task = tmp_path / "task.json"
    task.write_text(json.dumps(TASK))
    path = tmp_path / "cli.sqlite3"
    args = ["recommend", "--task-json", str(task), "--epochs", "2", "--repeats", "2"]
    first = _cli(*args, "--cache", str(path))
    assert first.returncode == 0, first.stderr
    assert "From the result cache" not in first.stdout and path.is_file()
    second = _cli(*args, "--cache", str(path))
    assert second.returncode == 0, second.stderr
    with sqlite3.connect(path) as db:
        ((created,),) = db.execute("SELECT created_at FROM results").fetchall()  # the one entry
    line = next(line for line in second.stdout.splitlines() if "From the result cache" in line)
    assert (
        line.strip()
        == f"From the result cache, computed {datetime.fromisoformat(created):%Y-%m-%d %H:%M:%S} UTC"
    )
    fresh = _cli(*args, "--no-cache", "--json")
    assert fresh.returncode == 0 and json.loads(fresh.stdout)["cache"] is None
    both = _cli(*args, "--cache", str(path), "--no-cache")
    assert both.returncode == 2 and "--cache" in both.stderr


# ---------------------------------------------------------------------------------------------- gRPC


def test_grpc_a_second_identical_call_is_a_hit_and_options_cache_false_bypasses_it(tmp_path):
    from advisor.client import AdvisorClient
    from lossadvisor.v1 import advisor_pb2 as pb
    from tests.service_helpers import ServerProcess

    path = tmp_path / "server.sqlite3"
    server = ServerProcess("--workers", "1", "--cache", str(path))
    try:
        request = pb.RecommendRequest(
            task=pb.TaskDescription(heads=[pb.Head(type="binary", class_histogram=[900, 100])], n_features=8),
            options=pb.Options(epochs=2, repeats=2, max_rows=200),
        )
        first = server.stub.Recommend(request, timeout=120)
        assert first.HasField("cache") and not first.cache.hit and first.cache.stored and path.is_file()
        second = server.stub.Recommend(request, timeout=120)  # another deadline, so another budget: same key
        assert second.cache.hit and second.cache.key == first.cache.key
        assert second.cache.created_at == first.cache.created_at
        assert list(second.heads) == list(first.heads)
        request.options.cache = False
        bypassed = server.stub.Recommend(request, timeout=120)
        assert not bypassed.HasField("cache")  # not consulted: computed afresh, nothing stored
        with AdvisorClient(server.address, timeout=120) as client:  # the Python client reads the cache info
            remote = client.recommend(TASK, epochs=2, repeats=2, max_rows=200)
            assert remote.cache.hit and remote.cache.path is None  # the server's path stays on the server
            assert remote.cache.created_at == first.cache.created_at.ToDatetime(tzinfo=timezone.utc)
            assert client.recommend(TASK, epochs=2, repeats=2, max_rows=200, cache=False).cache is None
    finally:
        assert server.stop() == 0
