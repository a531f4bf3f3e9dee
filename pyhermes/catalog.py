"""The index answering with runs: :class:`Catalog` (documented in ``pyhermes.storage``).

:class:`Catalog` is the index of one folder
(:class:`pyhermes.index.run_index.RunIndex`: opening, syncing, SQL) plus the
methods that turn its rows into :class:`~pyhermes.experiment.Experiment` objects
and lists bound to it (:class:`~pyhermes.runlist.ExperimentList`). Runs of one
folder are pooled while the index is unchanged, so lists of the same folder
hold the same objects; the details of many runs (info, args, score summaries)
are filled with one query each (:class:`_Batch`).

Dependencies point one way: this module imports :mod:`pyhermes.experiment` and
:mod:`pyhermes.runlist`, neither of which imports it. :meth:`Experiment.load_all`
reaches it through the loader this module installs on import
(:func:`pyhermes.experiment.install_loader`): :func:`load_all` scans the disk
(``index=False``), or opens the index serving the folder and syncs it
(:meth:`~pyhermes.index.run_index.RunIndex.open_and_sync`, the one open-then-sync
policy) and returns the folder's runs bound to it.

A folder's list reads its runs with one query, when it is first read: binding
it reads the change token and one aggregate (the count and newest id of the
folder's runs, which tell later, should the index change before the list is
read, which runs it held; see :class:`~pyhermes.runlist.BoundQuery`), no row.
A list from :meth:`Catalog.find` keeps the ids it matched when made (its
condition may hold for other runs later), and reads its rows when first read.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pyhermes import rundir
from pyhermes.errors import QueryError, RunFormatError
from pyhermes.experiment import Experiment, install_loader
from pyhermes.index.query.filters import Filter, under
from pyhermes.index.query.runs import as_condition, path_is
from pyhermes.index.run_index import RunIndex
from pyhermes.runlist import LOAD_ORDER, BoundQuery, ExperimentList, RunPool

__all__ = ["Catalog", "load_all", "ARCHIVE_FOLDER"]

PathLike = rundir.PathLike

#: The folder below a root that archived runs are moved into (keeping their relative paths).
ARCHIVE_FOLDER = ".archive"


def load_all(
    root: Path,
    *,
    recursive: bool,
    index: str | os.PathLike[str] | bool | None,
    sync: str,
    archived: bool = False,
) -> ExperimentList[Experiment]:
    """What :meth:`Experiment.load_all` returns once it checked ``root`` and ``sync``: the runs
    below ``root`` scanned from disk (``index=False``), else from the index serving ``root``,
    synced first (see :meth:`~pyhermes.index.run_index.RunIndex.open_and_sync`). With
    ``archived``, the runs of the whole tree below ``root/.archive`` scanned from disk (the
    index holds live runs only; an empty list when there is no such folder)."""
    if archived:
        archive = root / ARCHIVE_FOLDER
        if not archive.is_dir():
            return ExperimentList([])
        return _scan(archive, True)
    if index is False:
        return _scan(root, recursive)
    catalog = Catalog.open_and_sync(root, None if index is True else index, sync=sync, recursive=recursive)
    return catalog._folder_runs(root, recursive)


def _scan(root: Path, recursive: bool) -> ExperimentList[Experiment]:
    """Load every readable run below ``root`` from disk.

    One warning names the runs that could not be read (skipped), one the runs read
    with warnings (loaded; see :func:`pyhermes.rundir.decode_text`), as a sync does.
    """
    experiments = []
    problems: list[str] = []
    noted: list[list[str]] = []
    for run_dir in rundir.iter_run_dirs(root, recursive=recursive):
        notes: list[str] = []
        try:
            info = rundir.read_info(run_dir, notes)
            arg_lines = rundir.read_exec_args(run_dir, notes)
        except (RunFormatError, OSError) as exc:
            problems.append(f"{run_dir}: {exc}")
            continue
        experiments.append(Experiment._from_parts(run_dir, info, arg_lines))
        if notes:
            noted.append(notes)
    if problems:
        warnings.warn(
            f"{len(problems)} run(s) under {root} could not be read and were skipped: "
            + "; ".join(problems[:5])
            + (" ..." if len(problems) > 5 else ""),
            rundir.RunFormatWarning,
            stacklevel=4,  # the caller of Experiment.load_all
        )
    if noted:
        warnings.warn(
            f"{len(noted)} run(s) under {root} were read with warnings and loaded "
            f"(first: {noted[0][0]})",
            rundir.RunFormatWarning,
            stacklevel=4,
        )
    return ExperimentList(sorted(experiments, key=lambda e: str(e.path_to_experiment)))


class _Batch:
    """Fills info, args, score summaries, tags and notes of many indexed runs, with one query each."""

    def __init__(self, catalog: Catalog, members: dict[int, Experiment]) -> None:
        self.catalog = catalog
        self.members = members
        self.filled: set[str] = set()

    def fill(self, what: str) -> None:
        if what in self.filled:
            return
        self.filled.add(what)
        found = self.catalog.details(what, list(self.members))
        if what == "summary":
            from pyhermes.summary import ScoreSummary

        for run_id, experiment in self.members.items():
            if what == "info" and experiment._info is None:
                experiment._info = found.get(run_id, {})
            elif what == "args" and experiment._exec_arg_lines is None:
                experiment._exec_arg_lines = found.get(run_id, [])
            elif what == "tags" and experiment._tags is None:
                experiment._tags = found.get(run_id, [])
            elif what == "notes" and experiment._notes is None:
                experiment._notes = found.get(run_id, [])
            elif what == "summary" and experiment._summary is None and run_id in found:
                fields = found[run_id]
                fields["count"] = fields["count"] or 0
                experiment._summary = ScoreSummary(**fields)


def _renew(pool: RunPool, token: str | None) -> None:
    """Empty ``pool`` unless its objects were built at the index state ``token``."""
    if pool.token != token or token is None:
        pool.runs = {}
        pool.token = token


# Runs built for a folder, by (index URL, root, folder, recursive): reused while the index is unchanged.
_POOLS: dict[tuple[str, str, str, bool], RunPool] = {}


class Catalog(RunIndex):
    """The index of the run directories below a folder, answering with runs.

    Open it with :meth:`open`; query with :meth:`find`, :meth:`count` and
    :meth:`sql`. (The SQL side is :class:`pyhermes.index.run_index.RunIndex`.)
    """

    __module__ = "pyhermes.storage"  # its documented home (reprs, pickles)

    def load_runs(
        self, path: PathLike, *, recursive: bool = False, sync: str = "quick"
    ) -> ExperimentList[Experiment]:
        """Sync the runs in ``path`` (its tree with ``recursive``) and return them, ordered by path.

        The list is bound to the index (see :class:`ExperimentList`). While the
        index is unchanged, lists of the same folder hold the same Experiment objects.
        """
        self.refresh(path, recursive=recursive, mode=sync)
        return self._folder_runs(path, recursive)

    def _folder_runs(self, path: PathLike, recursive: bool) -> ExperimentList[Experiment]:
        """The runs in ``path`` (its tree with ``recursive``) as the index holds them, by path."""
        rel = self._rel(path)
        key = (self.url, str(self.root), rel, recursive)
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = RunPool()
        scope = under(rel, recursive)
        # No runs are read yet: the list's first read reads them, once (see BoundQuery).
        token = self.change_token()
        query = BoundQuery(self, scope, list(LOAD_ORDER), None, pool, token, fingerprint=self.count_and_newest(scope))
        return ExperimentList._bound(query)

    def _bound_list(
        self, scope: Filter, order_by: Sequence[str], limit: int | None, pool: RunPool
    ) -> ExperimentList[Experiment]:
        """A list bound to ``scope``, with the ids it holds now (its answer should the index change).

        A list of at most ``limit`` runs is read at once (one query gives both).
        """
        token = self.change_token()
        if limit is not None:
            experiments = self._runs(scope, order_by, limit, pool, token)
            ids = [experiment._run_id for experiment in experiments]
            bound = ExperimentList._bound(BoundQuery(self, scope, order_by, limit, pool, token, ids))
            list.extend(bound, experiments)
            bound._snapshot, bound._loaded = tuple(experiments), True
            return bound
        ids = self.run_ids(scope, order_by, limit)
        return ExperimentList._bound(BoundQuery(self, scope, order_by, limit, pool, token, ids))

    def find(
        self,
        where: Filter | str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ExperimentList[Experiment]:
        """Return the runs of the index (below the opened folder) matching ``where``.

        ``where`` is a filter object or expression text (see the README);
        ``order_by`` sort keys like ``"-final_mean"``, ``"start_time"`` or ``"-lr"``.
        Without ``limit`` and ``offset`` the list is bound to the index: further
        ``where``/``filter_by_exec_args``/``latest`` calls on it are SQL too.

        Raises:
            QueryError: a malformed expression, unknown column or bad sort key.
        """
        from pyhermes.index.query.select import sort_columns

        if limit is not None and limit < 0:
            raise QueryError(f"limit must be >= 0, got {limit}")
        condition = self._scope() & as_condition(where)
        keys = [part for part in order_by.split(",") if part.strip()] if isinstance(order_by, str) else list(order_by or [])
        sort_columns(keys)  # a bad key fails here, not when the list is read
        if offset:
            return ExperimentList(self._runs(condition, keys, limit, RunPool(), None, offset))
        return self._bound_list(condition, keys, limit, RunPool())

    def get(self, run: str) -> Experiment:
        """Return one run by path (absolute, or relative to the current directory) or identifier prefix.

        Raises:
            QueryError: no run, or more than one run, matches.
        """
        candidate = Path(run)
        if candidate.is_dir():
            scope = under(self._rel(candidate.parent), False) & path_is(self._rel(candidate))
            found = self._runs(scope, [], None, RunPool(), None)
        else:
            from pyhermes.index.query.filters import run as run_fields

            found = list(self.find(run_fields.identifier.startswith(run), limit=3))
        if not found:
            raise QueryError(f"no run matches {run!r} in the index of {self.root}")
        if len(found) > 1:
            names = ", ".join(experiment.identifier for experiment in found[:3])
            raise QueryError(f"{run!r} matches more than one run ({names}); give a longer prefix")
        return found[0]

    def _runs(
        self,
        condition: Filter,
        order_by: Sequence[str],
        limit: int | None,
        pool: RunPool,
        token: str | None,
        offset: int = 0,
    ) -> list[Experiment]:
        """Build (or take from ``pool``) the Experiment objects of the matching runs, in order."""
        rows = self.run_rows(condition, order_by, limit, offset)
        _renew(pool, token)
        return self._objects(rows, pool)

    def _runs_by_ids(self, ids: Sequence[int], pool: RunPool) -> list[Experiment]:
        """The runs of ``ids`` still in the index, in that order."""
        if not ids:
            return []
        rows = {row[0]: row for row in self.run_rows(self.ids_in(ids))}
        return self._objects((rows[run_id] for run_id in ids if run_id in rows), pool)

    def _runs_up_to(
        self, scope: Filter, order_by: Sequence[str], newest: int | None, pool: RunPool
    ) -> list[Experiment]:
        """The runs of ``scope`` still in the index whose id is at most ``newest``, in order:
        what a folder's list held when made (see :class:`~pyhermes.runlist.BoundQuery`)."""
        if newest is None:
            return []
        return self._objects((row for row in self.run_rows(scope, order_by) if row[0] <= newest), pool)

    def _objects(self, rows: Iterable[tuple[Any, ...]], pool: RunPool) -> list[Experiment]:
        known = pool.runs
        members: dict[int, Experiment] = {}
        batch = _Batch(self, members)
        build = Experiment._indexed
        experiments = []
        # Building many objects at once triggers the cyclic garbage collector again and
        # again, for nothing: none of them is garbage yet. Pause it for the loop.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for run_id, path, commit_hash, start_time in rows:
                experiment = known.get(run_id)
                if experiment is None:
                    experiment = build(
                        path, path.rpartition("/")[2], commit_hash, start_time, self, run_id, batch
                    )
                    members[run_id] = known[run_id] = experiment
                experiments.append(experiment)
        finally:
            if collecting:
                gc.enable()
        return experiments

    def _frame(self, source: BoundQuery, loaded: ExperimentList[Any] | None) -> Any:
        """The frame of a bound list (see :meth:`ExperimentList.to_frame`)."""
        frame = self.frame(source.scope, source.order_by, source.limit)
        run_ids = frame.pop("run_id").tolist()
        if loaded is not None:
            by_id = {item._run_id: item for item in list.__iter__(loaded)}
            frame["experiments"] = [by_id[run_id] for run_id in run_ids]
            return frame
        _renew(source.pool, source.token)  # the caller checked that the index is at that token
        rows = zip(
            run_ids, frame["path"].tolist(), frame["commit_hash"].tolist(),
            [None if value is None else value.to_pydatetime() for value in frame["start_time"].tolist()],
            strict=True,
        )
        frame["experiments"] = self._objects(rows, source.pool)
        return frame


install_loader(load_all)
