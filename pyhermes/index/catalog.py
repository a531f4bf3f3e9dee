"""The catalogue: an index of run directories, opened on a folder, answering queries in SQL.

Storage contract: the run directories are the source of truth. A :class:`Catalog`
reads them (never writes or deletes them) and keeps the index a faithful cache;
objects it returns carry their values from the index, and file-backed methods
of :class:`~pyhermes.storage.Experiment` still read the disk.
"""

from __future__ import annotations

import gc
import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, String, delete, func, select, text, type_coerce
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError

from pyhermes import rundir
from pyhermes.errors import CatalogError, QueryError, ReadOnlyQueryError
from pyhermes.index.models import (
    SUMMARY_COLUMNS,
    arg_table,
    info_table,
    problem_table,
    run_table,
)
from pyhermes.index.query import Filter, as_filter, everything, sort_columns, under
from pyhermes.index.sync import (
    SETTLE_SECONDS,
    SYNC_MODES,
    Syncer,
    SyncReport,
    bump_change_token,
    read_change_token,
    relative,
    to_datetime,
)
from pyhermes.summary import ScoreSummary

if TYPE_CHECKING:
    from pyhermes.storage import Experiment, ExperimentList

__all__ = ["Catalog", "SqlResult", "write_through"]

# start_time is fetched untyped: SQLAlchemy's SQLite DateTime parsing costs more than the query;
# to_datetime() parses SQLite's ISO text in C (PostgreSQL hands back datetimes).
_RUN_COLUMNS = (
    run_table.c.id,
    run_table.c.path,
    run_table.c.commit_hash,
    type_coerce(run_table.c.start_time, String).label("start_time"),
)


# Lists answered by load_runs, by (url, root, folder, recursive): (change token, runs).
_LOADED: OrderedDict[tuple[str, str, str, bool], tuple[str, tuple[Experiment, ...]]] = OrderedDict()
_LOADED_SIZE = 8
_SYNC_ATTEMPTS = 5
# Refresh the planner's statistics after a sync that added or removed this many runs.
_ANALYZE_AFTER = 500


class RunFormatProblemsWarning(UserWarning):
    """Some runs could not be read during a sync; ``hermes-reindex --check`` lists them."""


@dataclass(frozen=True)
class SqlResult:
    """The answer of :meth:`Catalog.sql`: column names and rows (tuples)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        """Return the rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.rows]

    def _repr_html_(self) -> str:
        """The notebook view: a table of the first 50 rows and a count."""
        from pyhermes.present import sql_html

        return sql_html(self.columns, self.rows)


class _Batch:
    """Loads info, args and score summaries for many indexed runs with one query each."""

    def __init__(self, catalog: Catalog, members: Mapping[int, Experiment]) -> None:
        self.catalog = catalog
        self.members = members
        self.filled: set[str] = set()

    def _ids_clause(self, column: Any) -> Any:
        ids = list(self.members)
        if len(ids) <= 500:
            return column.in_(ids)
        return column.between(min(ids), max(ids))

    def fill(self, what: str) -> None:
        if what in self.filled:
            return
        self.filled.add(what)
        with self.catalog.engine.connect() as conn:
            if what == "info":
                self._fill_info(conn)
            elif what == "args":
                self._fill_args(conn)
            else:
                self._fill_summary(conn)

    def _fill_info(self, conn: Any) -> None:
        infos: dict[int, dict[str, str]] = {run_id: {} for run_id in self.members}
        query = select(info_table.c.run_id, info_table.c.key, info_table.c.value).where(
            self._ids_clause(info_table.c.run_id)
        )
        for run_id, key, value in conn.execute(query):
            if run_id in infos:
                infos[run_id][key] = value
        for run_id, experiment in self.members.items():
            if experiment._info is None:
                experiment._info = infos[run_id]

    def _fill_args(self, conn: Any) -> None:
        lines: dict[int, list[str]] = {run_id: [] for run_id in self.members}
        query = (
            select(arg_table.c.run_id, arg_table.c.raw)
            .where(self._ids_clause(arg_table.c.run_id))
            .order_by(arg_table.c.run_id, arg_table.c.position)
        )
        for run_id, raw in conn.execute(query):
            if run_id in lines:
                lines[run_id].append(raw)
        for run_id, experiment in self.members.items():
            if experiment._exec_arg_lines is None:
                experiment._exec_arg_lines = lines[run_id]

    def _fill_summary(self, conn: Any) -> None:
        columns = [run_table.c[column] for column in SUMMARY_COLUMNS.values()]
        query = select(run_table.c.id, *columns).where(self._ids_clause(run_table.c.id))
        for run_id, *values in conn.execute(query):
            experiment = self.members.get(run_id)
            if experiment is not None and experiment._summary is None:
                fields = dict(zip(SUMMARY_COLUMNS, values, strict=False))
                fields["count"] = fields["count"] or 0
                experiment._summary = ScoreSummary(**fields)


class Catalog:
    """An index of the run directories below a root folder.

    Open it with :meth:`open`; query with :meth:`find`, :meth:`count` and :meth:`sql`.
    """

    def __init__(self, engine: Engine, root: Path, location: Any = None) -> None:
        self.engine = engine
        self.root = root
        self.location = location
        self.settle_seconds = SETTLE_SECONDS

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = ".",
        index: str | os.PathLike[str] | None = None,
        sync: str = "quick",
    ) -> Catalog:
        """Open the index serving ``path`` and sync the whole tree below ``path`` into it.

        ``index`` is a SQLite file path or an SQLAlchemy URL; ``None`` applies the
        rule of the README ("Where the index lives"). ``sync`` is ``"quick"``,
        ``"full"`` or ``"none"``.

        Raises:
            FileNotFoundError: ``path`` is not a directory.
            ValueError: ``sync`` is not a known mode.
            CatalogError: ``sync="none"`` and no index serves ``path`` yet.
            IndexVersionError: the index was written by a newer pyhermes.
        """
        from pyhermes.index.engine import find_index

        _check_mode(sync)
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such directory: {folder}")
        if sync == "none" and find_index(folder.resolve(), index) is None:
            raise CatalogError(
                f"no index serves {folder} yet, and sync='none' does not build one: "
                f"load it once with sync='quick', or run: hermes-reindex {folder}"
            )
        catalog = cls.open_index(folder, index)
        if sync != "none":
            catalog.sync(folder, mode=sync)
        return catalog

    @classmethod
    def open_index(cls, folder: Path, index: str | os.PathLike[str] | None = None) -> Catalog:
        """Open the index serving ``folder`` without syncing; create or migrate it as needed.

        Used by ``hermes-reindex`` and ``load_all``, which sync right after.
        """
        from pyhermes.index.engine import index_root, open_engine, resolve_index

        location = resolve_index(folder.resolve(), index)
        engine = open_engine(location)
        catalog = cls(engine, Path(index_root(engine, location, folder.resolve())), location)
        catalog._folder = folder.resolve()
        return catalog

    _folder: Path | None = None

    def _rel(self, path: str | os.PathLike[str]) -> str:
        return relative(self.root, Path(path).resolve())

    # ------------------------------------------------------------------ syncing

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
        runs could not be read and how to see them.
        """
        _check_mode(mode)
        folder = Path(path) if path is not None else (self._folder or self.root)
        if mode == "none":
            return SyncReport()
        for attempt in range(_SYNC_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    report = Syncer(conn, self.root, self.settle_seconds, progress).run(
                        self._rel(folder), recursive, mode, reread
                    )
                    if report.added + report.removed >= _ANALYZE_AFTER and (
                        conn.dialect.name == "sqlite"
                    ):
                        conn.exec_driver_sql("ANALYZE")  # fresh statistics for the planner
                break
            except (IntegrityError, OperationalError) as exc:
                # Another process synced the same runs since this sync read the index
                # (a duplicate path, or SQLite's stale-snapshot "database is locked"):
                # the transaction was rolled back; sync again from what is there now.
                if attempt + 1 == _SYNC_ATTEMPTS or not _is_conflict(exc):
                    raise
        if warn and report.problems:
            warnings.warn(
                f"{report.problems} run(s) under {folder} could not be read and were skipped; "
                f"see them with: hermes-reindex --check {folder}",
                RunFormatProblemsWarning,
                stacklevel=3,
            )
        if warn and report.warning_paths:
            first = next(iter(report.warning_paths.values()))[0]
            warnings.warn(
                f"{len(report.warning_paths)} run(s) under {folder} were read with warnings "
                f"and loaded (first: {first}); see them with: hermes-reindex --check {folder}",
                rundir.RunFormatWarning,
                stacklevel=3,
            )
        return report

    def load_runs(
        self, path: str | os.PathLike[str], *, recursive: bool = False, sync: str = "quick"
    ) -> ExperimentList:
        """Sync the runs in ``path`` (its tree with ``recursive``) and return them, ordered by path.

        When the index has not changed since the same folder was last loaded in this
        process, the same Experiment objects are returned again (in a new list).
        """
        from pyhermes.storage import ExperimentList

        self.sync(path, recursive=recursive, mode=sync)
        scope = under(self._rel(path), recursive)
        key = (str(self.engine.url), str(self.root), self._rel(path), recursive)
        token = self.change_token()
        cached = _LOADED.get(key)
        if cached is not None and token is not None and cached[0] == token:
            _LOADED.move_to_end(key)
            return ExperimentList(cached[1])._bind(self, scope)
        experiments = self._experiments(scope, order_by=["path"])
        if token is not None:
            _LOADED[key] = (token, tuple(experiments))
            while len(_LOADED) > _LOADED_SIZE:
                _LOADED.popitem(last=False)
        return experiments

    # ------------------------------------------------------------------ queries

    def run_ids(
        self,
        where: Filter | str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[int]:
        """Return the ids of the matching runs, in order."""
        query = select(run_table.c.id).where(as_filter(where).clause())
        query = query.order_by(*sort_columns(order_by)).offset(offset or None)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def find(
        self,
        where: Filter | str | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ExperimentList:
        """Return the runs of the index (below the opened folder) matching ``where``.

        ``where`` is a filter object or expression text (see the README);
        ``order_by`` sort keys like ``"-final_mean"``, ``"start_time"`` or ``"-lr"``.
        The list is indexed: further ``where``/``filter_by_exec_args``/``latest``
        calls on it are SQL too.

        Raises:
            QueryError: a malformed expression, unknown column or bad sort key.
        """
        if limit is not None and limit < 0:
            raise QueryError(f"limit must be >= 0, got {limit}")
        condition = self._scope() & as_filter(where)
        return self._experiments(condition, order_by=order_by, limit=limit, offset=offset)

    def count(self, where: Filter | str | None = None) -> int:
        """Return how many runs (below the opened folder) match ``where``."""
        condition = self._scope() & as_filter(where)
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(run_table).where(condition.clause())).scalar_one()
            )

    def _scope(self) -> Filter:
        if self._folder is None:
            return everything
        return under(self._rel(self._folder), True)

    def _experiments(
        self,
        condition: Filter,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> ExperimentList:
        from pyhermes.storage import Experiment, ExperimentList

        query = select(*_RUN_COLUMNS).where(condition.clause()).order_by(*sort_columns(order_by))
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        root = str(self.root)
        members: dict[int, Experiment] = {}
        batch = _Batch(self, members)
        build = Experiment._indexed
        prefix = root.rstrip(os.sep) + os.sep
        # Building many objects at once triggers the cyclic garbage collector again and
        # again, for nothing: none of them is garbage yet. Pause it for the loop.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for run_id, path, commit_hash, start_time in rows:
                members[run_id] = build(
                    prefix + path,
                    path.rpartition("/")[2],
                    commit_hash,
                    to_datetime(start_time),
                    self,
                    run_id,
                    batch,
                )
        finally:
            if collecting:
                gc.enable()
        experiments = list(members.values())
        result = ExperimentList(experiments)
        if limit is None and not offset:
            result._bind(self, condition)
        return result

    def change_token(self) -> str | None:
        """The token of the index's last change to its runs (lists bound to another are stale)."""
        with self.engine.connect() as conn:
            return read_change_token(conn)

    def problems(self) -> list[tuple[str, str]]:
        """Return (path relative to the root, reason) of every run that could not be read."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(problem_table.c.path, problem_table.c.reason).order_by(problem_table.c.path))
            return [(path, reason) for path, reason in rows]

    def run_warnings(self) -> list[tuple[str, list[str]]]:
        """Return (path relative to the root, notes) of every indexed run read with warnings.

        These runs are in the index (unlike :meth:`problems`): their files were
        irregular but readable, e.g. a line decoded by the Latin-1 fallback, NUL
        bytes dropped, a line without ``:`` skipped (see
        :func:`pyhermes.rundir.decode_text`).
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(run_table.c.path, run_table.c.warnings)
                .where(run_table.c.warnings.is_not(None))
                .order_by(run_table.c.path)
            )
            return [(path, notes.split("\n")) for path, notes in rows]

    def sql(self, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> SqlResult:
        """Run one read-only SQL statement with bound parameters; return its columns and rows.

        Named parameters (``:name``) take a mapping. The statement runs in a
        read-only transaction that is rolled back, so the index is never changed.

        Raises:
            ReadOnlyQueryError: the statement would write (or is not a single statement).
            QueryError: the database rejected the statement; the message is its error.
        """
        _check_read_only(query)
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            else:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            try:
                result = conn.execute(text(query), dict(params or {}))
                columns = list(result.keys())
                rows = [tuple(row) for row in result] if result.returns_rows else []
            except (DBAPIError, StatementError) as exc:
                message = str(getattr(exc, "orig", exc)).splitlines()[0]
                if "readonly" in message.lower().replace(" ", "") or "read-only" in message.lower():
                    raise ReadOnlyQueryError(f"refused: the statement would write ({message})") from None
                raise QueryError(f"SQL error: {message}") from None
            finally:
                conn.rollback()
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
        return SqlResult(columns, rows)

    def frame(self, scope: Filter, experiments: Sequence[Experiment] | None = None) -> Any:
        """Return a pandas DataFrame of the runs matching ``scope``, built from the index.

        Columns: identifier, path, start_time, end_time, execution_time, finished,
        commit_hash, comments, one per exec-arg key (numbers as numbers, flags as
        True, multi-values as text), one per score summary, and ``experiments``.

        Raises:
            MissingDependencyError: pandas is not installed.
        """
        from pyhermes._optional import require

        pd = require("pandas")
        if experiments is None:
            experiments = self._experiments(scope, order_by=["path"])
        ids = [experiment._run_id for experiment in experiments]
        fields = [
            "identifier", "path", "start_time", "end_time", "execution_time", "finished",
            "commit_hash", "comments",
        ]
        query = (
            select(
                run_table.c.id,
                *(run_table.c[name] for name in fields),
                *(run_table.c[column].label(name) for name, column in SUMMARY_COLUMNS.items()),
                arg_table.c.key,
                arg_table.c.value,
                arg_table.c.num,
            )
            .select_from(run_table.outerjoin(arg_table, arg_table.c.run_id == run_table.c.id))
            .where(scope.clause())
            .order_by(run_table.c.id, arg_table.c.position)
        )
        base: dict[int, dict[str, Any]] = {}
        run_args: dict[int, dict[str, Any]] = {}
        arg_keys: dict[str, None] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                if row.id not in base:
                    record = {name: getattr(row, name) for name in (*fields, *SUMMARY_COLUMNS)}
                    record["path"] = os.path.join(str(self.root), record["path"])
                    record["start_time"] = to_datetime(record["start_time"])
                    record["end_time"] = to_datetime(record["end_time"])
                    record["finished"] = bool(record["finished"])
                    base[row.id] = record
                    run_args[row.id] = {}
                if row.key is None:
                    continue
                arg_keys.setdefault(row.key)
                values = run_args[row.id]
                value = _frame_value(row.value)
                if row.key not in values:
                    values[row.key] = value
                elif isinstance(values[row.key], _Repeated):
                    values[row.key].append(value)
                else:
                    values[row.key] = _Repeated([values[row.key], value])
        reserved = {*fields, *SUMMARY_COLUMNS, "experiments"}
        columns: dict[str, list[Any]] = {name: [] for name in fields}
        # An exec-arg key that is also a column name (a positional "path") gets a prefix.
        arg_columns = {key: f"arg:{key}" if key in reserved else key for key in arg_keys}
        for column in arg_columns.values():
            columns[column] = []
        for name in SUMMARY_COLUMNS:
            columns[name] = []
        for run_id in ids:
            record = base.get(run_id, {})
            values = run_args.get(run_id, {})
            for name in (*fields, *SUMMARY_COLUMNS):
                columns[name].append(record.get(name))
            for key, column in arg_columns.items():
                value = values.get(key)
                columns[column].append(list(value) if isinstance(value, _Repeated) else value)
        columns["experiments"] = list(experiments)
        return pd.DataFrame(columns, index=range(len(ids)))

    # ------------------------------------------------------------------ single runs

    def get(self, run: str) -> Experiment:
        """Return one run by path (absolute, or relative to the current directory) or identifier prefix.

        Raises:
            QueryError: no run, or more than one run, matches.
        """
        candidate = Path(run)
        if candidate.is_dir():
            found = self._experiments(under(self._rel(candidate.parent), False) & _path_is(self._rel(candidate)))
        else:
            from pyhermes.index.query import run as run_fields

            found = self.find(run_fields.identifier.startswith(run), limit=3)
        if not found:
            raise QueryError(f"no run matches {run!r} in the index of {self.root}")
        if len(found) > 1:
            names = ", ".join(experiment.identifier for experiment in found[:3])
            raise QueryError(f"{run!r} matches more than one run ({names}); give a longer prefix")
        return found[0]

    def forget(self, experiment: Experiment) -> None:
        """Drop one run from the index (after its directory was erased)."""
        rel = self._rel(experiment.path_to_experiment)
        with self.engine.begin() as conn:
            run_id = conn.execute(select(run_table.c.id).where(run_table.c.path == rel)).scalar()
            if run_id is not None:
                conn.execute(delete(arg_table).where(arg_table.c.run_id == run_id))
                conn.execute(delete(info_table).where(info_table.c.run_id == run_id))
                conn.execute(delete(run_table).where(run_table.c.id == run_id))
            bump_change_token(conn)

    def upsert(self, run_dir: Path) -> None:
        """Read one run directory and store it in the index (write-through of new runs)."""
        with self.engine.begin() as conn:
            syncer = Syncer(conn, self.root, self.settle_seconds)
            rel = self._rel(run_dir)
            existing = conn.execute(select(run_table.c.id).where(run_table.c.path == rel)).scalar()
            syncer._read_and_store([(rel, existing)])
            bump_change_token(conn)


def _path_is(rel: str) -> Filter:
    """The run stored at ``rel`` (internal: users do not filter on paths)."""
    from pyhermes.index.query import ColumnCompare

    return ColumnCompare("path", "==", rel)


class _Repeated(list):  # type: ignore[type-arg]
    """The values of an exec-arg key that repeats (told apart from a value that is a list)."""


def _frame_value(value: str | None) -> Any:
    """A frame cell for an exec arg: ``True`` for a flag, the converted value, or the text."""
    if value is None:
        return True
    return rundir.convert_value(value) if " " not in value else value


def _is_conflict(exc: Exception) -> bool:
    """True for the errors a concurrent sync of the same index causes."""
    if isinstance(exc, IntegrityError):
        return True
    message = str(exc.orig if isinstance(exc, DBAPIError) else exc).lower()
    return "locked" in message or "busy" in message or "could not serialize" in message


def _check_mode(mode: str) -> None:
    if mode not in SYNC_MODES:
        raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, not {mode!r}")


def _strip_sql_literals(query: str) -> str:
    query = re.sub(r"'(?:[^']|'')*'", "''", query)
    query = re.sub(r'"(?:[^"]|"")*"', '""', query)
    query = re.sub(r"--[^\n]*", " ", query)
    return re.sub(r"/\*.*?\*/", " ", query, flags=re.DOTALL)


def _check_read_only(query: str) -> None:
    """Refuse anything but one SELECT / WITH / VALUES / EXPLAIN statement.

    This gives the clear message; the database itself runs the statement read-only
    (SQLite ``PRAGMA query_only``, PostgreSQL ``SET TRANSACTION READ ONLY``), which
    also stops a write hidden in a ``WITH`` or a function.
    """
    bare = _strip_sql_literals(query).strip().rstrip(";").strip()
    if ";" in bare:
        raise ReadOnlyQueryError("refused: give one SQL statement at a time")
    first = bare.split(None, 1)[0].lower() if bare else ""
    if first not in {"select", "with", "values", "explain"}:
        raise ReadOnlyQueryError(
            "refused: only read-only statements (SELECT, WITH, VALUES, EXPLAIN) run here, "
            f"not {first.upper() or 'an empty statement'}"
        )


def _existing_index_for(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        index_file = candidate / ".hermes" / "index.sqlite"
        if index_file.is_file():
            return candidate
    return None


def write_through(experiment: Experiment, index: Any) -> None:
    """Store a run just written by pyhermes in the index serving it, if one exists.

    Used by :meth:`Experiment.create`, ``finish`` and ``store_comments``. Without
    an explicit ``index``, ``HERMES_INDEX`` or an existing ``.hermes/index.sqlite``
    above the run, nothing is written. An index that cannot be updated only
    costs a warning: the run directory is complete either way.
    """
    from pyhermes.index.engine import index_root, open_engine, resolve_index

    run_dir = experiment.path_to_experiment.resolve()
    explicit = index if index not in (None, True) else os.environ.get("HERMES_INDEX") or None
    try:
        if experiment._catalog is not None:
            catalog = experiment._catalog
        else:
            serving = run_dir.parent
            if explicit is None:
                found = _existing_index_for(serving)
                if found is None:
                    return
                serving = found
            location = resolve_index(serving, explicit)
            engine = open_engine(location)
            catalog = Catalog(engine, Path(index_root(engine, location, serving)), location)
            experiment._catalog = catalog
        catalog.upsert(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run on disk is what matters
        warnings.warn(f"run {experiment.identifier} was written but not indexed: {exc}", stacklevel=3)
