"""The index of run directories, opened on a folder: syncing it and answering in SQL.

Storage contract: the run directories are the source of truth. An :class:`RunIndex`
reads them (never writes or deletes them) and keeps the index a faithful cache.

Dependencies point one way: ``pyhermes.storage`` -> ``pyhermes.index`` ->
``pyhermes.rundir``. This package answers with rows, ids and DataFrames of
columns and never imports :mod:`pyhermes.storage`; the documented
:class:`pyhermes.Catalog` (in ``storage``) subclasses :class:`RunIndex` and turns
rows into :class:`~pyhermes.storage.Experiment` objects.

Reads are the methods of :class:`pyhermes.index.query.runs.RunQueries`, which
:class:`RunIndex` subclasses: SQL text from :mod:`pyhermes.index.query.select` run
by a :mod:`pyhermes.index.store.sql_reader` (the standard library's sqlite3 for a
SQLite index at the current schema, SQLAlchemy then not imported at all; else
SQLAlchemy). Writes open the SQLAlchemy engine and go through the sync stage's
entry points, which own their transactions and retries:
:func:`pyhermes.index.sync.syncer.sync_folder` (:meth:`RunIndex.sync`) and
:mod:`pyhermes.index.sync.write_through` (:meth:`RunIndex.upsert`,
:meth:`RunIndex.forget`). Opening then syncing a folder, the policy of
``load_all``, :meth:`RunIndex.open` and the web app alike, is
:meth:`RunIndex.open_and_sync`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes import rundir
from pyhermes.errors import CatalogError, RunFormatProblemsWarning
from pyhermes.index.query.runs import RunQueries
from pyhermes.index.rules import SETTLE_SECONDS, SYNC_MODES, stored_name
from pyhermes.index.store.sql_reader import (
    EngineReader,
    Reader,
    SqliteReader,
    open_sqlite_reader,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pyhermes.index.store.location import IndexLocation
    from pyhermes.index.sync.parallel import ChunkReader
    from pyhermes.index.sync.syncer import SyncReport

__all__ = [
    "RunIndex", "RunFormatProblemsWarning", "write_through", "writes_through", "WRITE_THROUGH_VAR", "check_sync_mode",
    "serving_index",
]


class RunIndex(RunQueries):
    """An index of the run directories below a root folder.

    Open it with :meth:`open`; the queries are inherited from
    :class:`~pyhermes.index.query.runs.RunQueries`, and :class:`pyhermes.Catalog`
    adds the methods that return runs. ``engine`` (SQLAlchemy) is opened on first use: reads of a SQLite
    index at the current schema do not need it.
    """

    def __init__(
        self,
        engine: Engine | None,
        root: Path,
        location: IndexLocation | None = None,
        *,
        reader: Reader | None = None,
    ) -> None:
        self._engine = engine
        self.root = root
        self.location = location
        self._reader = reader
        self.settle_seconds = SETTLE_SECONDS
        self._folder: Path | None = None
        self._early: ChunkReader | None = None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the index (opened, and the schema checked, on first use)."""
        if self._engine is None:
            from pyhermes.index.store.engine import open_engine

            assert self.location is not None
            if isinstance(self._reader, SqliteReader):
                # Its connection made SQLite's -wal file; closed, the file is as the
                # opening's integrity check last saw it (see engine.quick_check).
                self._reader.close()
            self._engine = open_engine(self.location)
        return self._engine

    @property
    def reader(self) -> Reader:
        """What runs the read queries (see :mod:`pyhermes.index.store.sql_reader`)."""
        if self._reader is None:
            self._reader = EngineReader(self.engine)
        return self._reader

    @property
    def url(self) -> str:
        """The URL of the index (an SQLAlchemy URL)."""
        if self.location is not None:
            return self.location.url
        return self.engine.url.render_as_string(hide_password=False)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = ".",
        index: str | os.PathLike[str] | None = None,
        sync: str = "quick",
    ) -> Any:
        """Open the index serving ``path`` and sync the whole tree below ``path`` into it.

        ``index`` is a SQLite file path or an SQLAlchemy URL; ``None`` applies the
        rule of the README ("Where the index lives"). ``sync`` is ``"quick"``,
        ``"full"`` or ``"none"``. Returns an instance of ``cls``.

        Raises:
            FileNotFoundError: ``path`` is not a directory.
            ValueError: ``sync`` is not a known mode.
            CatalogError: ``sync="none"`` and no index serves ``path`` yet.
            IndexVersionError: the index was written by a newer pyhermes.
        """
        return cls.open_and_sync(path, index, sync=sync)

    @classmethod
    def open_and_sync(
        cls,
        path: str | os.PathLike[str] = ".",
        index: str | os.PathLike[str] | None = None,
        *,
        sync: str = "quick",
        recursive: bool = True,
        defer: bool = False,
    ) -> Any:
        """Open the index serving ``path`` and sync ``path`` (its tree with ``recursive``) in
        mode ``sync``: the one open-then-sync policy, of ``load_all``, :meth:`open` and the
        web app. Returns an instance of ``cls``.

        ``sync="none"`` syncs nothing and needs an index that serves ``path`` already.
        Otherwise the index is created or migrated as needed (:meth:`open_index`; a new
        SQLite index reads the runs ahead while it is created), then a quick sync is
        skipped when its check finds nothing to do (:meth:`refresh`). With ``defer`` the
        caller syncs later itself (the web app, in the background): the index is opened
        as for that sync, without reading ahead, and the mode is checked by that sync.

        Raises:
            FileNotFoundError: ``path`` is not a directory.
            ValueError: ``sync`` is not a known mode (unless ``defer``).
            CatalogError: ``sync="none"`` and no index serves ``path`` yet.
            IndexVersionError: the index was written by a newer pyhermes.
        """
        from pyhermes.index.store.location import find_index

        if not defer:
            check_sync_mode(sync)
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such directory: {folder}")
        if sync == "none" and find_index(folder.resolve(), index) is None:
            raise CatalogError(
                f"no index serves {folder} yet, and sync='none' does not build one: "
                f"load it once with sync='quick', or run: hermes-reindex {folder}"
            )
        syncs_now = sync != "none" and not defer
        catalog = cls.open_index(folder, index, syncs_tree=recursive if syncs_now else None)
        if syncs_now:
            catalog.refresh(folder, recursive=recursive, mode=sync)
        return catalog

    @classmethod
    def open_index(
        cls, folder: Path, index: str | os.PathLike[str] | None = None, *, syncs_tree: bool | None = None
    ) -> Any:
        """Open the index serving ``folder`` without syncing; create or migrate it as needed.

        Used by ``hermes-reindex`` and ``load_all``, which sync right after. A SQLite
        index at the current schema is opened for reading with the standard library only.
        ``syncs_tree`` says that the caller syncs ``folder`` next (its whole tree when
        True): a new SQLite index then reads the runs ahead, on every core, while it
        is created (:func:`pyhermes.index.sync.run_reading.read_ahead_for_new_index`).
        """
        from pyhermes.index.store.location import resolve_index

        resolved = folder.resolve()
        location = resolve_index(resolved, index)
        served = open_sqlite_reader(location)
        if served is not None:
            reader, root = served
            catalog = cls(None, root, location, reader=reader)
        else:
            from pyhermes.index.store.engine import index_root, open_engine

            early = None
            if (
                syncs_tree is not None
                and location.file is not None
                and location.root == resolved
                and not location.file.exists()
            ):
                from pyhermes.index.sync.run_reading import read_ahead_for_new_index

                early = read_ahead_for_new_index(str(resolved), syncs_tree)
            try:
                engine = open_engine(location)
            except BaseException:
                if early is not None:
                    early.close()
                raise
            catalog = cls(engine, Path(index_root(engine, location, resolved)), location)
            catalog._early = early
        catalog._folder = resolved
        return catalog

    # ------------------------------------------------------------------ syncing

    def refresh(self, path: str | os.PathLike[str], *, recursive: bool, mode: str) -> None:
        """Sync ``path`` in ``mode`` unless a quick sync is sure to find nothing to do.

        That check (:func:`pyhermes.index.sync.unchanged.nothing_to_sync`) only reads: on the
        standard-library read path of a SQLite index it needs no SQLAlchemy, and on
        PostgreSQL it spares a transaction (which, in a live lab, would read the running
        jobs' runs again each time).
        """
        check_sync_mode(mode)
        if mode == "none":
            return
        if mode == "quick":
            from pyhermes.index.sync import unchanged

            relisted: list[tuple[str, int, float]] = []
            settling: list[tuple[str, tuple[Any, ...]]] = []
            if self._quick_check(unchanged.nothing_to_sync, path, recursive, relisted, settling):
                if relisted:
                    from pyhermes.index.sync.quick_marks import remember_listings

                    remember_listings(self._reader, lambda: self.engine, relisted)
                if len(settling) >= unchanged.SETTLE_MARKS_FROM:
                    from pyhermes.index.sync.quick_marks import mark_settled

                    mark_settled(self._reader, lambda: self.engine, settling)
                return
        self.sync(path, recursive=recursive, mode=mode)

    def has_synced(self, path: str | os.PathLike[str]) -> bool:
        """Return whether a sync of the folder ``path`` ever completed in this index.

        A sync stores the listing of every folder it lists in its last transaction; a
        first build still running or killed midway, or an index rebuilt since, has none.
        """
        rows = self.reader.rows("SELECT 1 FROM hermes_folder WHERE path = :path", {"path": self._rel(path)})
        return bool(rows)

    def _quick_check(
        self,
        check: Callable[..., bool],
        path: str | os.PathLike[str],
        recursive: bool,
        relisted: list[Any],
        settling: list[Any],
    ) -> bool:
        """``check`` (the quick check) on this index; a database that is busy through SQLAlchemy
        (a PostgreSQL lock timeout) is "not sure": the sync, which waits and retries, follows."""
        arguments = (self.reader, self.root, self._rel(path), recursive, relisted, settling, self.settle_seconds)
        if isinstance(self._reader, SqliteReader):
            return check(*arguments)
        from sqlalchemy.exc import DBAPIError

        try:
            return check(*arguments)
        except DBAPIError:
            return False

    def sync(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        recursive: bool = True,
        mode: str = "full",
        reread: bool = False,
        progress: Callable[[int], None] | None = None,
        warn: bool = True,
    ) -> SyncReport:
        """Bring the index in step with the runs below ``path`` (default: the folder opened).

        Returns the :class:`SyncReport`. With ``warn``, one warning names how many
        runs could not be read and how to see them. The sync owns its transactions
        and their retries (:func:`pyhermes.index.sync.syncer.sync_folder`).
        """
        from pyhermes.index.sync.syncer import SyncReport, sync_folder

        # Runs read ahead while a new index was created: for this sync's first attempt only.
        early, self._early = self._early, None
        try:
            check_sync_mode(mode)
            folder = Path(path) if path is not None else (self._folder or self.root)
            if mode == "none":
                return SyncReport()
            report = sync_folder(
                self.engine, self.root, self._rel(folder), recursive=recursive, mode=mode, reread=reread,
                settle_seconds=self.settle_seconds, progress=progress, early=early,
            )
        finally:
            if early is not None:
                early.close()
        if warn and report.problems:
            warnings.warn(
                f"{report.problems} run(s) under {folder} could not be read and were skipped; "
                f"see them with: hermes-reindex --check {folder}",
                RunFormatProblemsWarning,
                stacklevel=2,
            )
        if warn and report.warning_paths:
            first = next(iter(report.warning_paths.values()))[0]
            warnings.warn(
                f"{len(report.warning_paths)} run(s) under {folder} were read with warnings "
                f"and loaded (first: {first}); see them with: hermes-reindex --check {folder}",
                rundir.RunFormatWarning,
                stacklevel=2,
            )
        return report

    def forget(self, experiment: Any) -> None:
        """Drop one run (anything with a ``path_to_experiment``) from the index, after its erase
        (:func:`pyhermes.index.sync.write_through.forget_run`)."""
        from pyhermes.index.sync.write_through import forget_run

        rel = self._rel(experiment.path_to_experiment)
        forget_run(self.engine, rel)

    def forget_runs(self, paths: Iterable[str | os.PathLike[str]]) -> int:
        """Drop the runs at ``paths`` (run directories, absolute or relative to the current
        directory; they need not exist any more) from the index, with their args, info, tags
        and notes: one transaction per 4000 runs, retried, the change token bumped
        (:func:`pyhermes.index.sync.write_through.forget_runs`). Archiving uses it.

        Returns:
            How many of them the index held.

        Raises:
            IndexBusyError: the index stayed locked past the limit.
        """
        from pyhermes.index.sync.write_through import forget_runs

        rels = [self._rel(path) for path in paths]
        return forget_runs(self.engine, rels) if rels else 0

    def store_runs(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Read the run directories ``paths`` and store them in the index: one transaction
        per 4000 runs, retried, the change token bumped
        (:func:`pyhermes.index.sync.write_through.store_runs`). Unarchiving uses it. A run
        that cannot be read is recorded as a problem, as a sync does.

        Raises:
            IndexBusyError: the index stayed locked past the limit.
        """
        from pyhermes.index.sync.write_through import store_runs

        rels = [self._rel(path) for path in paths]
        if rels:
            store_runs(self.engine, self.root, rels, self.settle_seconds)

    def store_curation(
        self, paths: Iterable[str | os.PathLike[str]], kinds: Sequence[str] = ("tags", "notes"),
        reads: Sequence[Any] | None = None,
    ) -> int:
        """Store the tags and/or notes (``kinds``) of the run directories ``paths`` as their
        files hold them now (or as ``reads``, their
        :func:`~pyhermes.index.sync.write_through.read_curation_now`, say), for the runs the
        index holds: their tag or note rows and signature columns only, one transaction per
        4000 runs, the change token bumped
        (:func:`pyhermes.index.sync.write_through.store_curation`). The write-through of
        ``add_tags``, ``remove_tags`` and ``add_note``.

        Returns:
            How many of the runs the index holds (and were stored).

        Raises:
            IndexBusyError: the index stayed locked past the limit.
        """
        from pyhermes.index.sync.write_through import store_curation

        rels = self._rels(paths)
        return store_curation(self.engine, self.root, rels, kinds, reads) if rels else 0

    def _rels(self, paths: Iterable[str | os.PathLike[str]]) -> list[str]:
        """The stored paths of ``paths``: runs of this index (an absolute, normal path below
        its root) without resolving them (a tenth of the time), others as :meth:`_rel` does."""
        prefix = str(self.root).rstrip(os.sep) + os.sep
        rels = []
        for path in paths:
            text = os.fspath(path)
            if text.startswith(prefix) and os.path.normpath(text) == text:
                rels.append(stored_name(text[len(prefix):]).replace(os.sep, "/"))
            else:
                rels.append(self._rel(path))
        return rels

    def upsert(self, run_dir: Path) -> None:
        """Read one run directory and store it in the index (write-through of new runs).

        The run is read first; the write is keyed by its path, so it commutes with
        syncs and other write-throughs of the same run
        (:func:`pyhermes.index.sync.write_through.store_runs`). Raises what
        :func:`~pyhermes.index.sync.transaction.run_in_transaction` raises.
        """
        from pyhermes.index.sync.write_through import store_runs

        store_runs(self.engine, self.root, [self._rel(run_dir)], self.settle_seconds)


def check_sync_mode(mode: str) -> None:
    """Raise ValueError unless ``mode`` is one of :data:`~pyhermes.index.rules.SYNC_MODES`."""
    if mode not in SYNC_MODES:
        raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, not {mode!r}")


def _existing_index_for(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        index_file = candidate / ".hermes" / "index.sqlite"
        if index_file.is_file():
            return candidate
    return None


#: Environment variable that turns the write-through of new runs on (``1``) or off (``0``).
WRITE_THROUGH_VAR = "HERMES_WRITE_THROUGH"


def writes_through(location: IndexLocation) -> bool:
    """True when a run just written should be stored in the index at ``location`` right away.

    ``$HERMES_WRITE_THROUGH`` decides when set (``1``/``true``/``on`` or
    ``0``/``false``/``off``). Otherwise yes, except for a SQLite file on a
    network filesystem: there many nodes writing one file is fragile, so jobs
    write their run directories only and the next reader's sync indexes them.
    """
    from pyhermes.index.store.sqlitefile import on_network_filesystem

    value = os.environ.get(WRITE_THROUGH_VAR, "").strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    return location.file is None or not on_network_filesystem(location.file.parent)


def serving_index(run_dir: Path, index: Any = None) -> RunIndex | None:
    """The index that a write to the run directory ``run_dir`` (absolute) goes through to:
    ``index`` (a file path or URL; ``None``/``True``: ``HERMES_INDEX`` or else an existing
    ``.hermes/index.sqlite`` above the run), opened; ``None`` when there is none, or where
    :func:`writes_through` says no (the next sync indexes the run).

    Raises:
        Exception: what opening the index raises (the callers warn and go on).
    """
    from pyhermes.index.store.engine import index_root, open_engine
    from pyhermes.index.store.location import resolve_index

    explicit = index if index not in (None, True) else os.environ.get("HERMES_INDEX") or None
    serving = run_dir.parent
    if explicit is None:
        found = _existing_index_for(serving)
        if found is None:
            return None
        serving = found
    location = resolve_index(serving, explicit)
    if not writes_through(location):
        return None
    engine = open_engine(location)
    return RunIndex(engine, Path(index_root(engine, location, serving)), location)


def write_through(experiment: Any, index: Any) -> None:
    """Store a run just written by pyhermes in the index serving it, if one exists.

    Used by :meth:`Experiment.create`, ``finish`` and ``store_comments``. Without
    an explicit ``index``, ``HERMES_INDEX`` or an existing ``.hermes/index.sqlite``
    above the run, nothing is written; nor where :func:`writes_through` says no
    (the run is indexed by the next sync; see :func:`serving_index`). An index that
    cannot be updated only costs a warning: the run directory is complete either way.
    """
    run_dir = experiment.path_to_experiment.resolve()
    try:
        if experiment._catalog is not None:
            catalog = experiment._catalog
            if catalog.location is not None and not writes_through(catalog.location):
                return
        else:
            catalog = serving_index(run_dir, index)
            if catalog is None:
                return
            experiment._catalog = catalog
        catalog.upsert(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run on disk is what matters
        warnings.warn(f"run {experiment.identifier} was written but not indexed: {exc}", stacklevel=3)


def change_tags_of(
    runs: Sequence[Any], add: Iterable[str], remove: Iterable[str]
) -> list[tuple[Any, list[str], list[str]]]:
    """Add the tags ``add`` to, and take ``remove`` from, each of ``runs`` (objects with a
    ``path_to_experiment``, like :class:`~pyhermes.experiment.Experiment`): the disk first
    (:func:`pyhermes.index.sync.write_through.change_tags_on_disk`, many runs at once), then
    the index of the runs whose tags changed (:func:`curation_through`). Each run's ``_tags``
    is set to its tags after.

    Returns:
        (run, tags before, tags after) of each run, in order.

    Raises:
        InvalidTagError: a tag is not valid: checked before anything is written.
        ValueError: a tag is both added and removed (nothing is written).
        OSError, RunFormatError: a run could not be changed (the first such error, once
            every other run was changed and written through).
    """
    from pyhermes.index.sync.write_through import change_tags_on_disk

    outcomes = change_tags_on_disk([os.fspath(run.path_to_experiment) for run in runs], add, remove)
    done, changed, reads = [], [], []
    for run, outcome in zip(runs, outcomes, strict=True):
        if not isinstance(outcome, BaseException):
            before, after, read = outcome
            run._tags = after
            done.append((run, before, after))
            if before != after:
                changed.append(run)
                reads.append(read)
    curation_through(changed, ("tags",), reads)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return done


def curation_through(runs: Sequence[Any], kinds: Sequence[str], reads: Sequence[Any] | None = None) -> None:
    """Store the tags and/or notes (``kinds``) of ``runs`` just changed on disk in the indexes
    holding them (:meth:`RunIndex.store_curation`, one transaction per 4000 runs of each
    index): a run's own index when it came from one, else the one :func:`serving_index`
    finds for its folder (``reads``: their :func:`~pyhermes.index.sync.write_through.read_curation_now`
    when the caller read them). Runs no index holds are left alone. An index that cannot be
    updated only costs a warning: the files are the truth, and the changed signature makes
    the next full sync read them.
    """
    groups: dict[int, tuple[RunIndex, list[Path], list[Any]]] = {}
    found: dict[Path, RunIndex | None] = {}
    allowed: dict[int, bool] = {}  # by index: writes_through looks at the mount table
    try:
        for at, run in enumerate(runs):
            catalog = run._catalog
            if catalog is None:
                folder = run.path_to_experiment.resolve().parent
                if folder not in found:
                    found[folder] = serving_index(folder / "run")
                catalog = run._catalog = found[folder]
            elif id(catalog) not in allowed:
                allowed[id(catalog)] = catalog.location is None or writes_through(catalog.location)
            if catalog is not None and allowed.get(id(catalog), True):
                group = groups.setdefault(id(catalog), (catalog, [], []))
                group[1].append(run.path_to_experiment)
                group[2].append(None if reads is None else reads[at])
        for catalog, paths, read in groups.values():
            catalog.store_curation(paths, kinds, None if reads is None else read)
    except Exception as exc:  # noqa: BLE001 - the run directories are what matters
        warnings.warn(f"{len(runs)} run(s) were changed on disk but not in their index: {exc}", stacklevel=3)
