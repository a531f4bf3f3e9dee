"""Index maintenance: compare the index with the disk, rebuild it atomically, describe it.

The library side of ``hermes-reindex --check`` and ``--rebuild`` (the command
line only parses options and prints): :func:`check` reads the index and asks
:func:`pyhermes.index.sync.check.compute_drift` how the disk differs, writing
nothing; :func:`rebuild` builds a fresh index and swaps it in;
:func:`describe_location` names an index for people (passwords hidden).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.errors import CatalogError

if TYPE_CHECKING:
    from pyhermes.index.run_index import RunIndex
    from pyhermes.index.store.location import IndexLocation
    from pyhermes.index.sync.syncer import SyncReport

__all__ = ["check", "rebuild", "describe_location"]


def describe_location(location: IndexLocation | None) -> str:
    """Return the index's SQLite file, or its URL with the password hidden (``?`` for none)."""
    if location is None:
        return "?"
    if location.file is not None:
        return str(location.file)
    from sqlalchemy.engine import make_url

    return make_url(location.url).render_as_string(hide_password=True)


def rebuild(
    catalog: RunIndex, progress: Callable[[int], None] | None = None
) -> tuple[SyncReport, RunIndex]:
    """Fill a new index with the runs it serves; swap it in; return (report, catalog).

    ``catalog`` is an :class:`~pyhermes.index.run_index.RunIndex` (a
    :class:`pyhermes.Catalog` in practice); the one returned is of the same class,
    opened on the new index.

    A ``.hermes`` or cache index serves its whole root, so every run below the
    root is read. An explicit file or database (``--index``, ``HERMES_INDEX``)
    stores absolute paths and may serve many trees: only the ROOT given is read,
    and other trees come back when they are next loaded.

    A SQLite file index is built as ``<file>.rebuild-<pid>`` beside the old file and
    copied over it in place through SQLite's backup API, in one transaction, so
    readers see the old index or the new one, never a half-built one, and other
    processes' connections stay valid (a file SQLite cannot read is renamed aside
    to ``<file>.broken-<time>`` instead). Another database has its
    hermes tables dropped and recreated (:func:`pyhermes.index.store.engine.rebuild_index`)
    before the sync, in one go.
    """
    from pyhermes.index.store import engine as engine_mod

    index_class = type(catalog)  # the caller's class: pyhermes.Catalog, which returns runs

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
        fresh = index_class(engine, engine_mod.index_root(engine, location, root), location)
        fresh.settle_seconds = settle
        report = fresh.sync(scope, mode="full", progress=progress, warn=False)
        return report, fresh

    from pyhermes.index.store.guard import index_lock, record_state
    from pyhermes.index.store.location import resolve_index
    from pyhermes.index.store.sqlitefile import overwrite_in_place, rename_aside

    old = location.file
    temporary = old.with_name(f"{old.name}.rebuild-{os.getpid()}")
    _remove_sqlite_file(temporary)
    try:
        temporary_location = resolve_index(root, temporary)
        engine = engine_mod.open_engine(temporary_location)
        if location.root is None:
            # The old index keeps its root in hermes_meta: so does the new one.
            engine_mod.index_root(engine, temporary_location, root)
        # Otherwise the root comes from where the file lives (.hermes/index.sqlite, cache):
        # the temporary name does not tell it, and nothing is stored, as in the old file.
        fresh = index_class(engine, root, temporary_location)
        fresh.settle_seconds = settle
        report = fresh.sync(scope, mode="full", progress=progress, warn=False)
        engine_mod.dispose_engines()
        # Copied over the old file through SQLite, in place: other processes' connections
        # to it stay valid (renamed over it, their last close would delete its new -wal).
        with index_lock(location.lock_path):
            try:
                overwrite_in_place(temporary, old)
            except sqlite3.Error:
                # The old file is not a database SQLite can write: no connection can be
                # using it, and the new one takes its place.
                rename_aside(old)
                os.replace(temporary, old)
                record_state(old)
    except BaseException:
        engine_mod.dispose_engines()
        _remove_sqlite_file(temporary)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(f"{temporary}.lock")
    _remove_sqlite_file(temporary)  # leftovers of the temporary's -wal/-shm, if any
    engine = engine_mod.open_engine(location)
    return report, index_class(engine, root, location)


def _remove_sqlite_file(file: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".checked"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{file}{suffix}")



def check(
    root: str | os.PathLike[str],
    index: str | os.PathLike[str] | None = None,
    *,
    reread: bool = False,
    deep: bool = False,
) -> dict[str, Any]:
    """Compare the runs below ``root`` with the index serving it, changing neither.

    Finds runs on disk but not indexed, indexed but gone, changed on disk since
    they were read (file sizes and mtimes), and runs that cannot be read (as
    recorded by the last sync, and as found now). With ``reread`` every run on
    disk is read again to check it can be. No index is created when there is none.
    With ``deep``, SQLite's ``integrity_check`` runs on the index file first; when it
    finds damage, nothing else is compared.

    Runs read with warnings (odd bytes, lines without ``:``) are listed apart and
    are no failure.

    Returns:
        The dict of :func:`pyhermes.index.sync.check.compute_drift` plus ``seconds``,
        ``stale`` (a run is not indexed, gone or changed), ``root`` and ``index``
        (:func:`describe_location`); for a damaged index file (``deep``) only
        ``{"index", "damaged": True, "integrity_check": [findings]}``.

    Raises:
        IndexVersionError: the index was written by a newer pyhermes.
    """
    from pyhermes.index.rules import SIGNATURE_COLUMNS, relative
    from pyhermes.index.run_index import RunIndex
    from pyhermes.index.store.engine import index_root, open_engine
    from pyhermes.index.store.location import find_index
    from pyhermes.index.sync.check import compute_drift

    started = time.perf_counter()
    folder = Path(root).resolve()
    location = find_index(folder, index)
    if deep and location is not None and location.file is not None:
        # A server database checks its own pages; a missing index has none to check.
        from pyhermes.index.store.engine import integrity_check

        damage = integrity_check(location.file)
        if damage:
            return {"index": describe_location(location), "damaged": True, "integrity_check": damage}
    stored: dict[str, tuple[Any, ...]] = {}
    recorded: list[tuple[str, str]] = []
    recorded_warnings: list[tuple[str, list[str]]] = []
    root_of_index = folder
    if location is not None:
        engine = open_engine(location)
        root_of_index = index_root(engine, location, folder, store=False)
        catalog = RunIndex(engine, Path(root_of_index), location)
        result = catalog.sql(f"SELECT path, {', '.join(SIGNATURE_COLUMNS)} FROM hermes_run")
        stored = {row[0]: tuple(row[1:]) for row in result.rows}
        recorded = catalog.problems()
        recorded_warnings = catalog.run_warnings()
    scope = relative(Path(root_of_index), folder)
    drift = compute_drift(
        Path(root_of_index), scope, stored, recorded, recorded_warnings, reread=reread
    )
    drift["seconds"] = round(time.perf_counter() - started, 4)
    drift["stale"] = bool(drift["not_indexed"] or drift["gone"] or drift["changed"])
    drift["root"] = str(folder)
    drift["index"] = describe_location(location)
    return drift
