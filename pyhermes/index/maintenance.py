"""Index maintenance: compare the index with the disk, rebuild it atomically, describe it.

The library side of ``hermes-reindex --check`` and ``--rebuild`` (the command
line only parses options and prints): :func:`check` computes the drift between
the run directories and the index without writing anything, :func:`rebuild`
builds a fresh index and swaps it in, :func:`describe_location` names an index
for people (passwords hidden).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.errors import CatalogError, RunFormatError

if TYPE_CHECKING:
    from pyhermes.index.catalog import Catalog
    from pyhermes.index.engine import IndexLocation
    from pyhermes.index.sync import SyncReport

__all__ = ["check", "compute_drift", "runs_on_disk", "rebuild", "describe_location"]


def describe_location(location: IndexLocation | None) -> str:
    """Return the index's SQLite file, or its URL with the password hidden (``?`` for none)."""
    if location is None:
        return "?"
    if location.file is not None:
        return str(location.file)
    from sqlalchemy.engine import make_url

    return make_url(location.url).render_as_string(hide_password=True)


def rebuild(
    catalog: Catalog, progress: Callable[[int], None] | None = None
) -> tuple[SyncReport, Catalog]:
    """Fill a new index with the runs it serves; swap it in; return (report, catalog).

    A ``.hermes`` or cache index serves its whole root, so every run below the
    root is read. An explicit file or database (``--index``, ``HERMES_INDEX``)
    stores absolute paths and may serve many trees: only the ROOT given is read,
    and other trees come back when they are next loaded.

    A SQLite file index is built as ``<file>.rebuild-<pid>`` beside the old file and
    renamed over it (its ``-wal``/``-shm`` are removed first), so readers see the
    old index or the new one, never a half-built one. Another database has its
    hermes tables dropped and recreated (:func:`pyhermes.index.engine.rebuild_index`)
    before the sync, in one go.
    """
    from pyhermes.index import engine as engine_mod
    from pyhermes.index.catalog import Catalog

    location = catalog.location
    root = catalog.root
    settle = catalog.settle_seconds
    if location is not None and location.root is None:
        scope = catalog._folder or root
    else:
        scope = root
    if location is None:
        raise CatalogError("this catalog was not opened on an index location; cannot rebuild it")
    if location.file is None:
        engine = engine_mod.rebuild_index(location)
        fresh = Catalog(engine, engine_mod.index_root(engine, location, root), location)
        fresh.settle_seconds = settle
        report = fresh.sync(scope, mode="full", progress=progress, warn=False)
        return report, fresh

    from pyhermes.index.schema import _file_lock

    old = location.file
    temporary = old.with_name(f"{old.name}.rebuild-{os.getpid()}")
    _remove_sqlite_file(temporary)
    try:
        temporary_location = engine_mod.resolve_index(root, temporary)
        engine = engine_mod.open_engine(temporary_location)
        if location.root is None:
            # The old index keeps its root in hermes_meta: so does the new one.
            engine_mod.index_root(engine, temporary_location, root)
        # Otherwise the root comes from where the file lives (.hermes/index.sqlite, cache):
        # the temporary name does not tell it, and nothing is stored, as in the old file.
        fresh = Catalog(engine, root, temporary_location)
        fresh.settle_seconds = settle
        report = fresh.sync(scope, mode="full", progress=progress, warn=False)
        engine_mod.dispose_engines()
        _checkpoint(temporary)
        with _file_lock(location.lock_path):
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{old}{suffix}")
            os.replace(temporary, old)
    except BaseException:
        engine_mod.dispose_engines()
        _remove_sqlite_file(temporary)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(f"{temporary}.lock")
    _remove_sqlite_file(temporary)  # leftovers of the temporary's -wal/-shm, if any
    engine = engine_mod.open_engine(location)
    return report, Catalog(engine, root, location)


def _checkpoint(file: Path) -> None:
    """Move the WAL of the SQLite ``file`` into the file itself, so the file stands alone."""
    connection = sqlite3.connect(file)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _remove_sqlite_file(file: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{file}{suffix}")



def check(
    root: str | os.PathLike[str], index: str | os.PathLike[str] | None = None, *, reread: bool = False
) -> dict[str, Any]:
    """Compare the runs below ``root`` with the index serving it, changing neither.

    Finds runs on disk but not indexed, indexed but gone, changed on disk since
    they were read (file sizes and mtimes), and runs that cannot be read (as
    recorded by the last sync, and as found now). With ``reread`` every run on
    disk is read again to check it can be. No index is created when there is none.

    Returns:
        The dict of :func:`compute_drift` plus ``seconds``, ``stale`` (a run is not
        indexed, gone or changed), ``root`` and ``index`` (:func:`describe_location`).

    Raises:
        IndexVersionError: the index was written by a newer pyhermes.
    """
    from pyhermes.index.catalog import Catalog
    from pyhermes.index.engine import find_index, index_root, open_engine
    from pyhermes.index.sync import relative

    started = time.perf_counter()
    folder = Path(root).resolve()
    location = find_index(folder, index)
    stored: dict[str, tuple[Any, ...]] = {}
    recorded: list[tuple[str, str]] = []
    root_of_index = folder
    if location is not None:
        engine = open_engine(location)
        root_of_index = index_root(engine, location, folder, store=False)
        catalog = Catalog(engine, Path(root_of_index), location)
        result = catalog.sql(
            "SELECT path, info_size, info_mtime_ns, args_size, args_mtime_ns, "
            "scores_size, scores_mtime_ns FROM hermes_run"
        )
        stored = {row[0]: tuple(row[1:]) for row in result.rows}
        recorded = catalog.problems()
    scope = relative(Path(root_of_index), folder)
    drift = compute_drift(Path(root_of_index), scope, stored, recorded, reread=reread)
    drift["seconds"] = round(time.perf_counter() - started, 4)
    drift["stale"] = bool(drift["not_indexed"] or drift["gone"] or drift["changed"])
    drift["root"] = str(folder)
    drift["index"] = describe_location(location)
    return drift


def compute_drift(
    index_root: Path,
    scope: str,
    stored: dict[str, tuple[Any, ...]],
    recorded: Sequence[tuple[str, str]],
    *,
    reread: bool = False,
) -> dict[str, Any]:
    """Compare the runs on disk below ``scope`` (relative to ``index_root``) with the index.

    ``stored`` maps indexed run paths to their six signature values, ``recorded``
    lists the (path, reason) problems of the index. Nothing is written.

    Returns a dict shaped like ``SyncReport.as_dict()`` (what a full sync would
    do: ``added``, ``updated``, ``removed``, ``unchanged``, ``problems``,
    ``problem_paths``) plus the lists ``not_indexed``, ``gone`` and ``changed``
    (sorted run paths relative to the index root).
    """
    from pyhermes.index.sync import read_run, signature

    def in_scope(path: str) -> bool:
        return scope == "" or path.startswith(scope + "/")

    indexed = {path: sig for path, sig in stored.items() if in_scope(path)}
    problems = {path: reason for path, reason in recorded if in_scope(path)}
    on_disk = runs_on_disk(index_root, scope, set(indexed))
    not_indexed: list[str] = []
    changed: list[str] = []
    unchanged = 0
    problem_paths: dict[str, str] = {}
    for path in on_disk:
        run_dir = str(index_root / path)
        known = indexed.get(path)
        differs = known is None or tuple(signature(run_dir)) != tuple(known)
        if not differs and not reread:
            unchanged += 1
            continue
        try:
            read_run(run_dir, path)
        except (RunFormatError, OSError, ValueError) as exc:
            problem_paths[path] = _first_line(f"{type(exc).__name__}: {exc}")
            continue
        if known is None:
            not_indexed.append(path)
        elif differs:
            changed.append(path)
        else:
            unchanged += 1
    disk = set(on_disk)
    gone = sorted(
        {path for path in indexed if path not in disk} | {p for p in problems if p not in disk}
    )
    for path, reason in problems.items():
        if path in disk and path not in problem_paths and path not in not_indexed:
            problem_paths[path] = _first_line(reason)
    return {
        "added": len(not_indexed),
        "updated": len(changed),
        "removed": len([path for path in gone if path in indexed]),
        "unchanged": unchanged,
        "problems": len(problem_paths),
        "problem_paths": dict(sorted(problem_paths.items())),
        "not_indexed": sorted(not_indexed),
        "gone": gone,
        "changed": sorted(changed),
    }


def runs_on_disk(index_root: Path, scope: str, known: set[str]) -> list[str]:
    """Return the run paths below ``scope`` as a sync lists them (symlinks not followed).

    A folder is a run when it holds ``hermes.info`` or is indexed; runs are not
    descended into; ``.hermes`` and ``.git`` folders are skipped.
    """
    from pyhermes import rundir

    runs: list[str] = []
    pending = [scope]
    while pending:
        current = pending.pop()
        folder = index_root / current if current else index_root

        def join(name: str, current: str = current) -> str:
            return f"{current}/{name}" if current else name

        names, others = rundir.list_folder(folder, lambda name: join(name) in known)
        runs.extend(join(name) for name in names)
        pending.extend(join(name) for name in reversed(others))
    return sorted(runs)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text
