"""The result cache of ``recommend()``: an identical call is answered from SQLite in milliseconds.

The key (:func:`cache_key`) is a sha256 of what decides the answer: the data content (a CSV file's or file
object's bytes; a DataFrame's ``pandas.util.hash_pandas_object`` with its column names and dtypes; arrays'
bytes, dtype and shape; the name and bytes of every file of segmentation data given by path: folders, NumPy
files, a manifest and the images it lists, and of audio data likewise (folders, or a manifest and the clips it
lists); a task description's canonical JSON), the target, task, sample rate, label separator, metric, traits
and training arguments, the trial options (repeats, epochs, max_rows, race, trials, the resolved device,
random_state), the rule files loaded (built-in and user folders: names and contents), the rule folders named,
and the versions of the advisor and torch. Not in it: ``progress`` and ``cancel`` (they never change a stored
answer), and ``budget_s``: it is only a cap, and a result it bound is never stored (below), so every stored
answer is the one any budget gets when it does not bind (a call over gRPC gets its deadline as its budget).

:class:`ResultCache` keeps results as JSON (``model_dump_json``, never pickles) in one table:

- WAL mode and a busy timeout, one connection per operation (nothing is shared across processes or
  threads), so several processes on one host (the service's workers, parallel CLI calls) read and write
  the same file;
- size-bounded: at most ``max_entries`` results and ``max_bytes`` of JSON; a write evicts the least recently
  used beyond either bound, and a hit counts as a use;
- a file that is not a SQLite database or is damaged (garbage bytes, a truncated file) is moved aside to
  ``NAME.corrupt`` and a fresh one is built; any other cache failure (a read-only folder, a lock held past the
  timeout) logs a warning and the call proceeds without the cache: the cache never fails a call.

Where: ``cache=True`` is ``LOSS_ADVISOR_CACHE`` when set (a path, or ``off``), else ``results.sqlite3`` in the
user cache folder (``platformdirs``); ``cache=PATH`` that file; ``cache=False`` (or ``off``) no cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from advisor.errors import AdvisorError
from advisor.recommendation import CacheInfo, Recommendation

CACHE_ENV = "LOSS_ADVISOR_CACHE"
OFF_VALUES = frozenset({"off", "0", "false", "no", "none"})
MAX_ENTRIES = 2_000
MAX_BYTES = 256 * 1024 * 1024
BUSY_TIMEOUT_S = 10.0
_CHUNK = 1024 * 1024
LOG = logging.getLogger("advisor.cache")
_T = TypeVar("_T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, created_at TEXT NOT NULL, "
    "used_at INTEGER NOT NULL, size INTEGER NOT NULL, result TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS results_used_at ON results (used_at)",
)
# Everything past the newest max_entries, or past max_bytes counted from the most recently used.
_EVICT = (
    "DELETE FROM results WHERE key IN (SELECT key FROM (SELECT key, "
    "ROW_NUMBER() OVER recent AS position, SUM(size) OVER recent AS running FROM results "
    "WINDOW recent AS (ORDER BY used_at DESC, key)) WHERE position > ? OR running > ?)"
)


def default_path() -> Path:
    """``results.sqlite3`` in the user cache folder (``~/.cache/loss-advisor`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("loss-advisor", appauthor=False)) / "results.sqlite3"


def cache_path(cache: bool | str | Path) -> Path | None:
    """The file ``cache=`` names, or None for no cache: ``False`` none, ``True`` ``LOSS_ADVISOR_CACHE`` when
    set, else :func:`default_path`; a path that file. ``off`` (or 0, false, no, none) means no cache."""
    if cache is False:
        return None
    if cache is True:
        cache = os.environ.get(CACHE_ENV, "").strip() or default_path()
    if str(cache).strip().lower() in OFF_VALUES:
        return None
    return Path(cache).expanduser()


def incomplete(result: Recommendation) -> bool:
    """Whether trials were cancelled or cut by the time cap: then the result is not the answer for its inputs
    (another run, or a larger budget, gets more evidence) and is not stored."""
    joint = result.multi_task_trials
    return any(head.stopped_by in ("cancelled", "time") or head.cut_short for head in result.heads) or (
        joint is not None and joint.stopped_by in ("cancelled", "time")
    )


class ResultCache:
    """Recommendations by :func:`cache_key` in one SQLite file (see the module docstring)."""

    def __init__(
        self, path: str | Path, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES
    ) -> None:
        self.path = Path(path)
        self.max_entries, self.max_bytes = max_entries, max_bytes

    @classmethod
    def open(cls, cache: bool | str | Path) -> ResultCache | None:
        """The cache ``cache=`` names (:func:`cache_path`), or None."""
        path = cache_path(cache)
        return None if path is None else cls(path)

    def get(self, key: str) -> Recommendation | None:
        """The stored result with ``cache.hit`` true and its original ``created_at``; None on a miss (or when
        the cache cannot be read). The entry's last use becomes now."""
        row = self._run(self._select, key)
        if row is None:
            return None
        created_at, text = row
        try:
            result = Recommendation.model_validate_json(text)
        except ValueError:  # not what this version writes: a miss, and the next put replaces it
            LOG.warning("result cache %s: entry %s does not parse; recomputing", self.path, key[:12])
            return None
        info = CacheInfo(hit=True, key=key, created_at=datetime.fromisoformat(created_at), stored=True,
                         path=str(self.path))  # fmt: skip
        return result.model_copy(update={"cache": info})

    def put(self, key: str, result: Recommendation) -> Recommendation:
        """Store ``result`` unless its trials were cancelled or cut by the time cap (:func:`incomplete`), or
        its JSON alone exceeds ``max_bytes``; returns it with ``cache`` saying whether it was stored."""
        created_at = datetime.now(timezone.utc)
        text = result.model_copy(update={"cache": None}).model_dump_json()
        stored = False
        if not incomplete(result) and len(text.encode()) <= self.max_bytes:
            stored = self._run(self._insert, key, created_at, text) is not None
        info = CacheInfo(hit=False, key=key, created_at=created_at, stored=stored, path=str(self.path))
        return result.model_copy(update={"cache": info})

    # ------------------------------------------------------------------------------------------ SQLite

    def _select(self, db: sqlite3.Connection, key: str) -> tuple[str, str] | None:
        row = db.execute("SELECT created_at, result FROM results WHERE key = ?", (key,)).fetchone()
        if row is not None:
            with contextlib.suppress(sqlite3.OperationalError):  # busy past the timeout: still a hit
                db.execute("UPDATE results SET used_at = ? WHERE key = ?", (time.time_ns(), key))
        return row

    def _insert(self, db: sqlite3.Connection, key: str, created_at: datetime, text: str) -> bool:
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT OR REPLACE INTO results (key, created_at, used_at, size, result) VALUES (?, ?, ?, ?, ?)",
            (key, created_at.isoformat(), time.time_ns(), len(text.encode()), text),
        )
        db.execute(_EVICT, (self.max_entries, self.max_bytes))
        db.execute("COMMIT")
        return True

    def _run(self, operation: Callable[..., _T], *args: Any) -> _T | None:
        """``operation(connection, *args)``; a damaged file is moved aside and the operation retried once on a
        fresh one; any other failure logs a warning and gives None."""
        for attempt in range(2):
            inode = file_inode(self.path)
            try:
                with connect(self.path, _SCHEMA) as db:
                    return operation(db, *args)
            except sqlite3.OperationalError as exc:  # locked past the timeout, read-only, disk full
                LOG.warning("result cache %s unavailable (%s); going on without it", self.path, exc)
                return None
            except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
                if attempt:
                    break
                move_aside(self.path, inode, exc, "result cache")
            except OSError as exc:
                LOG.warning("result cache %s unavailable (%s); going on without it", self.path, exc)
                return None
        LOG.warning("result cache %s still damaged after a rebuild; going on without it", self.path)
        return None


# ---------------------------------------------------------------------------------------------- SQLite files
# Shared with the service's operation store (advisor.service.operations), which keeps its file the same way.


@contextlib.contextmanager
def connect(path: Path, schema: Sequence[str]) -> Iterator[sqlite3.Connection]:
    """A fresh connection to ``path`` (created with its folder when missing): WAL mode, a busy timeout,
    autocommit (writers say BEGIN IMMEDIATE), ``schema`` applied; closed on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in schema:
            db.execute(statement)
        yield db
    finally:
        db.close()  # an open BEGIN is rolled back


def move_aside(path: Path, inode: int | None, exc: Exception, what: str) -> None:
    """Move a damaged file to ``NAME.corrupt`` (unless another process already replaced it: ``inode`` is the
    one the failed attempt opened), with a warning naming ``what`` it holds."""
    if inode is None or file_inode(path) != inode:
        return
    LOG.warning("%s %s is damaged (%s): moved to %s.corrupt, starting afresh", what, path, exc, path.name)
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".corrupt"))
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            path.with_name(path.name + suffix).unlink()


def file_inode(path: Path) -> int | None:
    """The inode of ``path``, or None when it is missing."""
    try:
        return path.stat().st_ino
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------- the key


def cache_key(data_or_task: Any, arguments: Mapping[str, Any], *, description: bool) -> str | None:
    """The cache key of a ``recommend()`` call, or None when the input cannot be fingerprinted stably (an
    unreadable path, an object column of unhashable values, an argument with no JSON form): such a call runs
    without the cache, and reports its own errors.

    ``arguments`` are ``recommend()``'s keyword arguments without ``progress``, ``cancel`` and ``cache``;
    ``description``: whether ``data_or_task`` is a task description rather than data.
    """
    import torch

    import advisor

    try:
        data = _description_digest(data_or_task) if description else _data_digest(data_or_task)
        if data is None:
            return None
        options = {name: value for name, value in arguments.items() if name != "budget_s"}
        if options.get("device") == "auto":
            options["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        canonical = json.dumps(
            {"data": data, "options": options, "rules": rules_digest(arguments.get("rule_dirs")),
             "advisor": advisor.__version__, "torch": torch.__version__},
            sort_keys=True, default=_plain,
        )  # fmt: skip
    except (AdvisorError, OSError, TypeError, ValueError):
        return None
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """The JSON form of an argument json cannot write itself."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"no stable form for {type(value).__name__}")


def _description_digest(task: Any) -> str:
    from advisor.task import parse_task

    return hashlib.sha256(parse_task(task).model_dump_json().encode()).hexdigest()


def _data_digest(data: Any) -> str | None:
    """sha256 of the rows the advisor reads (see :func:`cache_key`)."""
    digest = hashlib.sha256()
    files = _source_files(data)
    if files is not None:  # images and masks, or audio clips: every file's name and bytes
        for path in files:
            digest.update(f"{path.name}\0{_file_digest(str(path), *_stamp(path))}\0".encode())
        return "files:" + digest.hexdigest()
    if isinstance(data, str | Path):
        with Path(data).open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        return "csv:" + digest.hexdigest()
    if isinstance(data, io.BufferedIOBase | io.RawIOBase):
        data.seek(0)
        for chunk in iter(lambda: data.read(_CHUNK), b""):
            digest.update(chunk)
        data.seek(0)
        return "csv:" + digest.hexdigest()
    import numpy as np
    import pandas as pd

    parts = [data] if isinstance(data, pd.DataFrame) else data
    if isinstance(data, pd.DataFrame):
        kind = "frame"
    elif isinstance(data, tuple | list) and len(data) == 2:
        kind = "xy"
    else:
        return None
    for part in parts:
        if isinstance(part, pd.DataFrame | pd.Series):
            frame = part.to_frame() if isinstance(part, pd.Series) else part
            columns = [[str(name), str(dtype)] for name, dtype in frame.dtypes.items()]
            digest.update(json.dumps([type(part).__name__, columns]).encode())
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
            continue
        array = np.asarray(part)
        digest.update(json.dumps([array.dtype.str, array.shape]).encode())
        if array.dtype.hasobject:  # object bytes are pointers: hash the values
            rows = pd.DataFrame(array.reshape(len(array), -1) if array.ndim else [array])
            digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
        else:
            digest.update(np.ascontiguousarray(array).tobytes())
    return f"{kind}:{digest.hexdigest()}"


def _source_files(data: Any) -> list[Path] | None:
    """The files of a path-based segmentation source (folders, .npz / .npy files, a manifest CSV) or audio source
    (folders, a manifest CSV), or None.

    Cheap checks first, so that a plain CSV's cache hit does not import the profiler (and pandas): only a
    folder, a NumPy file, a pair of paths or a CSV whose header names image and mask (or input and target) is
    asked about.
    """
    paths = list(data) if isinstance(data, tuple | list) and len(data) == 2 else [data]
    if not all(isinstance(path, str | Path) for path in paths):
        return None
    if len(paths) == 1:
        path = Path(paths[0])
        if path.is_file() and path.suffix.lower() not in (".npz", ".npy"):
            with path.open("rb") as handle:
                header = handle.readline(64 * 1024).lower()
            images = b"image" in header and b"mask" in header
            if not images and not (b"input" in header and b"target" in header):
                return None
    from advisor.profiling.audio import source_files as audio_files
    from advisor.profiling.images import source_files

    found = audio_files(data)
    return found if found is not None else source_files(data)


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def rules_digest(rule_dirs: Sequence[str | Path] | None) -> str:
    """sha256 of the rule files ``load_rules(rule_dirs)`` reads: built-in, ``LOSS_ADVISOR_RULES`` and
    ``rule_dirs`` folders, each file's name and contents in load order."""
    from advisor.rules.loader import BUILTIN_RULES_DIR, rule_files, user_rule_dirs

    digest = hashlib.sha256()
    for index, folder in enumerate([BUILTIN_RULES_DIR, *user_rule_dirs(rule_dirs)]):
        for path in rule_files(folder):
            stat = path.stat()
            digest.update(
                f"{index}/{path.name}\0{_file_digest(str(path), stat.st_mtime_ns, stat.st_size)}\0".encode()
            )
    return digest.hexdigest()


@functools.lru_cache(maxsize=512)
def _file_digest(path: str, modified_ns: int, size: int) -> str:
    """sha256 of a file's contents (cached while its modification time and size stay)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
