"""The documented hermes "Storage and Retrieval" API: Experiment, ExperimentList, ExperimentFrame.

An :class:`Experiment` is one run directory. Its attributes come from the files
(``hermes.info``, ``exec_arguments``) or, for runs loaded through the index, from
the index without reading files; file-backed methods (``scores()``, ``result``,
logs, state dicts) always read the disk.

Dependencies point one way: this module uses :mod:`pyhermes.index` (SQL, rows)
and :mod:`pyhermes.rundir` (files); neither imports it. :class:`Catalog` is the
index (:class:`pyhermes.index.run_index.RunIndex`) plus the methods that turn its
rows into :class:`Experiment` objects. Nothing heavy is imported here: numpy,
pandas, torch and SQLAlchemy load when a method needs them.
"""

from __future__ import annotations

import contextlib
import gc
import operator
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pyhermes import rundir
from pyhermes.errors import QueryError, RunFormatError
from pyhermes.index.query.filters import Filter, under
from pyhermes.index.run_index import RunIndex, as_condition, check_sync_mode, path_is

if TYPE_CHECKING:
    import numpy as np

    from pyhermes.summary import ScoreSummary

__all__ = ["Experiment", "ExperimentList", "ExperimentFrame", "Catalog"]

PathLike = rundir.PathLike


class Experiment:
    """One run directory of the legacy hermes layout.

    Construct with :meth:`load`, :meth:`load_all` or :meth:`create`; the
    constructor is the documented low-level one.
    """

    COMMIT_HASH_N = rundir.COMMIT_HASH_KEY
    START_TIME_N = rundir.START_TIME_KEY
    END_TIME_N = rundir.END_TIME_KEY
    EXECUTION_TIME_N = rundir.EXECUTION_TIME_KEY
    COMMENT_N = rundir.COMMENTS_KEY
    INFO_FILE_NAME = rundir.INFO_FILE
    RE_EXECUTION_FN = rundir.RE_EXECUTION_FILE
    SCRIPT_OPTIONS_FN = rundir.EXEC_ARGS_FILE
    STDOUT_FN = rundir.STDOUT_FILE
    STDERR_FN = rundir.STDERR_FILE
    TIME_FMT = rundir.TIME_FORMAT

    def __init__(
        self,
        identifier: str,
        path_to_experiment: PathLike,
        commit_hash: str | None,
        start_time: datetime | None,
    ) -> None:
        self.identifier = identifier
        self._path: str | os.PathLike[str] = path_to_experiment
        self.commit_hash = commit_hash
        self.start_time = start_time
        self._info: dict[str, str] | None = None
        self._exec_arg_lines: list[str] | None = None
        self._exec_args_dict: dict[str, Any] | None = None
        self._summary: ScoreSummary | None = None
        self._pending_comments: list[str] | None = None
        self._catalog: Catalog | None = None
        self._run_id: int | None = None
        self._batch: Any = None

    @property
    def path_to_experiment(self) -> Path:
        """The run directory."""
        path = self._path
        if not isinstance(path, Path):
            path = self._path = Path(path)
        return path

    @path_to_experiment.setter
    def path_to_experiment(self, value: PathLike) -> None:
        self._path = value

    @classmethod
    def _indexed(
        cls,
        run_dir: str,
        identifier: str,
        commit_hash: str | None,
        start_time: datetime | None,
        catalog: Catalog,
        run_id: int,
        batch: Any,
    ) -> Experiment:
        """Build a run whose attributes come from the index (no file is read)."""
        experiment = cls.__new__(cls)
        experiment.__dict__.update(
            identifier=identifier,
            _path=run_dir,
            commit_hash=commit_hash,
            start_time=start_time,
            _info=None,
            _exec_arg_lines=None,
            _exec_args_dict=None,
            _summary=None,
            _pending_comments=None,
            _catalog=catalog,
            _run_id=run_id,
            _batch=batch,
        )
        return experiment

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path_to_experiment: PathLike) -> Experiment:
        """Load the run directory ``path_to_experiment`` from disk.

        Reads ``hermes.info`` and ``exec_arguments``. ``start_time`` comes from
        ``hermes.info``, else from the identifier's timestamp (a crashed run), else ``None``.

        Raises:
            FileNotFoundError: the path is not a run directory (no ``hermes.info``).
            OSError: a file of the run cannot be read at all.

        Bytes that are not UTF-8, NULs at the end of a file and lines without ``:``
        do not fail the load: they are decoded or skipped by the decoding rule of
        :func:`pyhermes.rundir.decode_text`, each with a ``RunFormatWarning``.
        """
        path = Path(path_to_experiment)
        if path.is_symlink():
            # Asked for by name (e.g. a `latest` link): load the run it points to.
            path = path.resolve()
        if not cls.is_experiment(path):
            raise FileNotFoundError(f"{path} is not a hermes run directory (no {rundir.INFO_FILE})")
        info = rundir.read_info(path)
        experiment = cls._from_parts(path, info, rundir.read_exec_args(path))
        return experiment

    @classmethod
    def _from_parts(
        cls,
        path: Path,
        info: dict[str, str],
        exec_arg_lines: list[str],
        summary: ScoreSummary | None = None,
    ) -> Experiment:
        identifier = path.name
        start = rundir.parse_time(info.get(rundir.START_TIME_KEY, ""))
        if start is None:
            start = rundir.parse_identifier(identifier)[0]
        experiment = cls(identifier, path, _stripped(info.get(rundir.COMMIT_HASH_KEY)), start)
        experiment._info = info
        experiment._exec_arg_lines = exec_arg_lines
        experiment._summary = summary
        return experiment

    @staticmethod
    def is_experiment(path: PathLike) -> bool:
        """True when ``path`` is a directory (not a symlink) holding a ``hermes.info`` file.

        A missing path is simply not an experiment (``False``).
        """
        return rundir.is_run_dir(path)

    @staticmethod
    def read_info(path_to_experiment: PathLike) -> dict[str, str]:
        """Return the ``hermes.info`` of a run as a dict (split on the first colon).

        Lines without a colon are skipped, and lines that are not UTF-8 decoded as
        Latin-1, each with a warning naming file and line.

        Raises:
            FileNotFoundError: there is no ``hermes.info``.
            OSError: it cannot be read at all.
        """
        return rundir.read_info(path_to_experiment)

    @staticmethod
    def load_all(
        path: PathLike,
        *,
        recursive: bool = False,
        index: str | os.PathLike[str] | bool | None = None,
        sync: str = "quick",
    ) -> ExperimentList:
        """Load every run directory below ``path``.

        Without ``recursive`` only the direct subdirectories of ``path`` holding a
        ``hermes.info`` are runs (the documented behaviour, ``path`` being an
        ``<experiment_name>`` folder); with it the whole tree is searched. Directory
        symlinks are not followed. A run that cannot be read is skipped with one
        warning for the whole load; the others load.

        The index (see the README, "Where the index lives") is kept in sync and
        answers later queries: ``index`` is a file path or SQLAlchemy URL, ``None``
        for the default place, or ``False`` to scan the disk without any index.
        ``sync`` is ``"quick"``, ``"full"`` or ``"none"`` (see the README).

        Returns:
            The runs, ordered by path.

        Raises:
            FileNotFoundError: ``path`` is not a directory.
            ValueError: ``sync`` is not a known mode.
            CatalogError: ``sync="none"`` and no index serves ``path`` yet.
        """
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"no such directory: {root}")
        check_sync_mode(sync)  # before an index is made for nothing
        if index is False:
            return _scan(root, recursive)
        index = None if index is True else index
        if sync == "none":  # answers from an existing index only
            catalog = Catalog.open(root, index=index, sync="none")
        else:
            catalog = Catalog.open_index(root, index, syncs_tree=recursive)
        return catalog.load_runs(root, recursive=recursive, sync=sync)

    # ------------------------------------------------------------------ creating

    @classmethod
    def create(
        cls,
        experiments_dir: PathLike,
        script_name: str,
        experiment_name: str,
        exec_args: Iterable[str] = (),
        *,
        job_idx: int = 0,
        commit_hash: str | None = None,
        comments: Iterable[str] = (),
        index: str | os.PathLike[str] | bool | None = None,
    ) -> Experiment:
        """Create a new run in the legacy layout and return it, started now.

        The run goes to ``<experiments_dir>/experiments/<script_name>/<experiment_name>/<identifier>``
        with ``hermes.info`` (``commit_hash`` from ``git rev-parse HEAD`` of the current
        directory when not given, else ``00000``), ``exec_arguments``,
        ``re_execution.hermes`` and empty logs. Use it as a context manager, or call
        :meth:`finish`, to record ``start_time``, ``end_time``, ``execution_time`` and
        ``comments``. Creation is exclusive: no existing directory is ever reused.

        The new run enters the index that serves ``experiments_dir`` (write-through)
        unless ``index=False``.

        Raises:
            ValueError: a name is not a plain folder name, or an argument is not one line.
        """
        commit = commit_hash if commit_hash is not None else rundir.current_commit_hash()
        run_dir, identifier, start = rundir.create_run_dir(
            experiments_dir, script_name, experiment_name, exec_args, job_idx, commit, datetime.now()
        )
        experiment = cls(identifier, run_dir, commit, start)
        experiment._pending_comments = [str(comment) for comment in comments]
        experiment._write_through(index)
        return experiment

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            import traceback

            with contextlib.suppress(OSError), rundir.open_log(self.file(rundir.STDERR_FILE), "a") as err:
                traceback.print_exception(exc_type, exc, tb, file=err)
        if not self.is_finished:
            self.finish()

    def append_scores(self, *scores: float) -> None:
        """Append scores (one float per line) to the run's ``.scores`` file, in one write."""
        text = "".join(f"{float(score)!r}\n" for score in scores)
        with open(self.scores_file, "a", encoding="utf-8") as handle:
            handle.write(text)
        self._summary = None

    def finish(self, end_time: datetime | None = None) -> None:
        """Record ``start_time``, ``end_time``, ``execution_time`` and ``comments`` in ``hermes.info``.

        Raises:
            RuntimeError: the run is already finished.
        """
        if self.is_finished:
            raise RuntimeError(f"run {self.identifier} is already finished")
        start = self.start_time or datetime.now()
        end = end_time or datetime.now()
        if self._pending_comments is not None:
            comments = ",".join(self._pending_comments)
        else:  # a run this process did not create: keep what it recorded
            comments = self.comments or ""
        rundir.write_finish(self.path_to_experiment, start, end, comments)
        self._pending_comments = None
        self._info = None
        self._write_through(None)

    def store_comments(self, *comments: str) -> None:
        """Record comments, joined by ``,`` in the ``comments`` line of ``hermes.info``.

        For a run being recorded, they are written when it finishes; for a finished
        run, a new ``comments`` line holding the old and the new comments is appended.
        """
        if self._pending_comments is not None:
            self._pending_comments.extend(str(comment) for comment in comments)
            return
        old = self.comments
        combined = ([old] if old else []) + [str(comment) for comment in comments]
        rundir.append_info(self.path_to_experiment, rundir.COMMENTS_KEY, ",".join(combined))
        self._info = None
        self._write_through(None)

    def _write_through(self, index: Any) -> None:
        if index is False:
            return
        from pyhermes.index.run_index import write_through

        write_through(self, index)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the run's values, not its index: what came from the index is filled in first."""
        if self._batch is not None:
            for what in ("info", "args", "summary"):
                self._batch.fill(what)
        return {**self.__dict__, "_catalog": None, "_batch": None, "_run_id": None}

    # ------------------------------------------------------------------ attributes

    def get_identifier(self) -> str:
        """Return the run's identifier (its directory name)."""
        return self.identifier

    @property
    def info_dict(self) -> dict[str, str]:
        """The run's ``hermes.info`` as a dict of strings (see :meth:`read_info`).

        Raises:
            OSError: the file cannot be read at all.
        """
        if self._info is None and self._batch is not None:
            self._batch.fill("info")
        if self._info is None:
            self._info = rundir.read_info(self.path_to_experiment)
        return self._info

    @property
    def exec_arg_lines(self) -> list[str]:
        """The run's arguments in file order, one stripped line each."""
        if self._exec_arg_lines is None and self._batch is not None:
            self._batch.fill("args")
        if self._exec_arg_lines is None:
            self._exec_arg_lines = rundir.read_exec_args(self.path_to_experiment)
        return self._exec_arg_lines

    @property
    def exec_args(self) -> set[str]:
        """The set of the run's arguments, e.g. ``{"-lr 0.001", "--doubledqn"}``."""
        return set(self.exec_arg_lines)

    @property
    def exec_args_dict(self) -> dict[str, Any]:
        """The arguments as a dict: flags and positionals ``True``, values as int/float/str.

        Several values give a list; a repeated key gives the list of its values.
        """
        if self._exec_args_dict is None:
            self._exec_args_dict = rundir.exec_args_dict(self.exec_arg_lines)
        return self._exec_args_dict

    @property
    def end_time(self) -> datetime | None:
        """When the run ended (``end_time`` of ``hermes.info``), ``None`` if not recorded."""
        return rundir.parse_time(self.info_dict.get(rundir.END_TIME_KEY, ""))

    @property
    def execution_time(self) -> float | None:
        """The run's duration in seconds, ``None`` if not recorded or not a number."""
        text = self.info_dict.get(rundir.EXECUTION_TIME_KEY)
        try:
            return float(text) if text is not None else None
        except ValueError:
            return None

    @property
    def comments(self) -> str | None:
        """The ``comments`` value of ``hermes.info`` (may be empty), ``None`` if not recorded."""
        return self.info_dict.get(rundir.COMMENTS_KEY)

    @property
    def is_finished(self) -> bool:
        """True when an ``end_time`` is recorded."""
        return self.end_time is not None

    @property
    def script_name(self) -> str | None:
        """The executed script's name, from the layout ``experiments/<script>/<experiment>/<id>``."""
        return rundir.layout_names(self.path_to_experiment)[0]

    @property
    def experiment_name(self) -> str | None:
        """The experiment's name, from the layout ``experiments/<script>/<experiment>/<id>``."""
        return rundir.layout_names(self.path_to_experiment)[1]

    @property
    def score_summary(self) -> ScoreSummary:
        """Summary statistics of the scores (from the index when the run came from it).

        Raises:
            RunFormatError: the scores file holds a line that is not a number.
        """
        if self._summary is None and self._batch is not None:
            self._batch.fill("summary")
        if self._summary is None:
            from pyhermes.summary import summarize

            self._summary = summarize(self.scores())
        return self._summary

    # ------------------------------------------------------------------ files

    def file(self, file: PathLike) -> Path:
        """Return the path of the file named ``file`` inside the run directory.

        Raises:
            ValueError: ``file`` would land outside the run directory.
        """
        return rundir.safe_child(self.path_to_experiment, file)

    @property
    def scores_file(self) -> Path:
        """Path of the run's scores file, ``<identifier>.scores``."""
        return rundir.scores_path(self.path_to_experiment, self.identifier)

    def scores(self) -> np.ndarray:
        """Return the scores as a float array (empty when there is no scores file).

        A header first line, blank lines and an unterminated unparsable last line are skipped.

        Raises:
            RunFormatError: a line is not a number.
        """
        return rundir.read_scores(self.scores_file)

    @property
    def result(self) -> Any:
        """The run's :class:`pyhermes.result.Result` (``<identifier>.result`` first, else the only one).

        Raises:
            RuntimeError: the run holds no ``.result`` file.
            UntrustedFileError: the file needs arbitrary unpickling.
        """
        from pyhermes.result import Result

        names = rundir.list_files(self.path_to_experiment, rundir.RESULT_SUFFIX)
        if not names:
            raise RuntimeError(f"run {self.identifier} holds no {rundir.RESULT_SUFFIX} file")
        preferred = f"{self.identifier}{rundir.RESULT_SUFFIX}"
        if preferred in names:
            name = preferred
        else:
            name = names[0]
            if len(names) > 1:
                warnings.warn(
                    f"run {self.identifier} holds {len(names)} result files; loading {name}",
                    stacklevel=2,
                )
        return Result.load(self.file(name))

    def list_pth_files(self) -> list[str]:
        """Return the names of the ``.pth`` files in the run directory, sorted."""
        return rundir.list_files(self.path_to_experiment, rundir.PTH_SUFFIX)

    def load_state_dict(self, pth_name: str, net: Any = None, *, trusted: bool = False) -> Any:
        """Load the state dict ``pth_name``; into ``net`` (then returned, in eval mode) when given.

        Tensors are mapped to the device of ``net``'s parameters (CPU without a net).
        The file is loaded with ``weights_only=True`` unless ``trusted``.

        Raises:
            ValueError: ``pth_name`` would land outside the run directory.
            FileNotFoundError: there is no such file.
            UntrustedFileError: the file needs arbitrary unpickling.
            MissingDependencyError: torch is not installed.
        """
        path = self.file(pth_name)
        device: Any = "cpu"
        if net is not None:
            parameter = next(iter(net.parameters()), None)
            if parameter is not None:
                device = parameter.device
        state_dict = rundir.load_torch(path, map_location=device, trusted=trusted)
        if net is None:
            return state_dict
        net.load_state_dict(state_dict)
        net.eval()
        return net

    def copy_file(self, path_to_file: PathLike, new_file_name: str | None = None) -> Path:
        """Copy a file into the run directory (as ``new_file_name`` or its own name); return the copy.

        Raises:
            FileNotFoundError: ``path_to_file`` does not exist.
            ValueError: the destination name would land outside the run directory.
        """
        source, destination = self._transfer_paths(path_to_file, new_file_name)
        shutil.copyfile(source, destination)
        return destination

    def move_file(self, path_to_file: PathLike, new_file_name: str | None = None) -> Path:
        """Move a file into the run directory (as ``new_file_name`` or its own name); return the new path.

        Raises:
            FileNotFoundError: ``path_to_file`` does not exist.
            ValueError: the destination name would land outside the run directory.
        """
        source, destination = self._transfer_paths(path_to_file, new_file_name)
        shutil.move(os.fspath(source), destination)
        return destination

    def _transfer_paths(self, path_to_file: PathLike, new_file_name: str | None) -> tuple[Path, Path]:
        source = Path(path_to_file)
        destination = self.file(new_file_name if new_file_name else source.name)
        if not source.is_file():
            raise FileNotFoundError(f"file to put into run {self.identifier} not found: {source}")
        return source, destination

    @contextlib.contextmanager
    def open_log_files(self, mode: str = "r+") -> Iterator[tuple[IO[Any], IO[Any]]]:
        """Open ``stdout.log`` and ``stderr.log`` with ``mode``; yields ``(stdout, stderr)``.

        Both are closed on exit, also on error. In a text mode they are UTF-8, and a
        byte that is not UTF-8 reads as its Latin-1 character (see
        :data:`pyhermes.rundir.TEXT_ERRORS`) instead of raising.
        """
        with contextlib.ExitStack() as stack:
            stdout = stack.enter_context(rundir.open_log(self.file(rundir.STDOUT_FILE), mode))
            stderr = stack.enter_context(rundir.open_log(self.file(rundir.STDERR_FILE), mode))
            yield stdout, stderr

    @contextlib.contextmanager
    def open_stderr_file(self, mode: str = "r+") -> Iterator[IO[Any]]:
        """Open ``stderr.log`` with ``mode`` (as :meth:`open_log_files`); yields the file, closed on exit."""
        with rundir.open_log(self.file(rundir.STDERR_FILE), mode) as stderr:
            yield stderr

    def erase(self) -> None:
        """Delete the run directory and everything in it (the only call that deletes a run)."""
        shutil.rmtree(self.path_to_experiment)
        if self._catalog is not None:
            self._catalog.forget(self)

    def __repr__(self) -> str:
        return f"Experiment({self.identifier!r}, {str(self.path_to_experiment)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Experiment):
            return NotImplemented
        return os.path.abspath(self._path) == os.path.abspath(other._path)

    def __hash__(self) -> int:
        return hash(os.path.abspath(self._path))


def _stripped(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _scan(root: Path, recursive: bool) -> ExperimentList:
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
            stacklevel=3,
        )
    if noted:
        warnings.warn(
            f"{len(noted)} run(s) under {root} were read with warnings and loaded "
            f"(first: {noted[0][0]})",
            rundir.RunFormatWarning,
            stacklevel=3,
        )
    return ExperimentList(sorted(experiments, key=lambda e: str(e.path_to_experiment)))


def _latest_key(experiment: Experiment) -> tuple[int, float]:
    start = experiment.start_time
    return (0, 0.0) if start is None else (1, start.timestamp())


class _Pool:
    """The Experiment objects built from one index for one folder, by run id, while it is unchanged.

    Lists answered by the index for the same folder reuse these objects, so a
    run is one object however many lists hold it.
    """

    def __init__(self) -> None:
        self.token: str | None = None
        self.runs: dict[int, Experiment] = {}


class _Query:
    """What a bound list is the answer of: the runs of ``catalog`` matching ``scope``, in order.

    ``token`` is the index's change token the answer holds for. Should the index
    change before the list is read, the list gives what it would have held then:
    a list from :meth:`Catalog.load_runs` or :meth:`Catalog.find` the runs of
    ``ids`` (taken when it was made); a list derived from another, ``derive``
    applied in memory to that list. A change elsewhere in the index (a live lab
    writes all day) leaves the answer as it was: see :meth:`holds`.
    """

    __slots__ = ("catalog", "scope", "order_by", "limit", "pool", "token", "ids", "derive", "root")

    def __init__(
        self,
        catalog: Catalog,
        scope: Filter,
        order_by: Sequence[str],
        limit: int | None,
        pool: _Pool,
        token: str | None,
        ids: Sequence[int] = (),
        derive: Callable[[], list[Experiment]] | None = None,
        root: _Query | None = None,
    ) -> None:
        self.root = root  # the list from load_all/find this one derives from
        self.catalog = catalog
        self.scope = scope
        self.order_by = order_by
        self.limit = limit
        self.pool = pool
        self.token = token
        self.ids = ids
        self.derive = derive

    def _runs_held(self) -> Filter:
        """The scope of exactly the runs of this answer (a top(n) is those n runs)."""
        return self.scope if self.limit is None else self.catalog.ids_in(self.ids_now())

    def narrowed(self, condition: Filter, derive: Callable[[], list[Experiment]]) -> _Query:
        return _Query(self.catalog, self._runs_held() & condition, self.order_by, None, self.pool,
                      self.token, derive=derive, root=self.root or self)

    def ordered(
        self, order_by: Sequence[str], limit: int | None, derive: Callable[[], list[Experiment]]
    ) -> _Query:
        return _Query(self.catalog, self._runs_held(), order_by, limit, self.pool, self.token, derive=derive,
                      root=self.root or self)

    def holds(self) -> bool:
        """True while this query, run now, answers what the list holds (SQL may answer for it).

        So it does while the index is unchanged (its change token); and after a change,
        while the list it derives from (from :meth:`Catalog.load_runs` or :meth:`Catalog.find`,
        with no limit) would still hold exactly the runs it held when made: the change
        was elsewhere in the index. One aggregate query tells that, once per change
        (:meth:`~pyhermes.index.run_index.RunIndex.holds_exactly`).
        """
        current = self.catalog.change_token()
        if current == self.token:
            return True
        base = self.root or self
        if base.limit is not None or base.derive is not None:
            return False
        if base.token != current:
            if not self.catalog.holds_exactly(base.scope, base.ids):
                return False
            base.token = current
        self.token = current
        return True

    def ids_now(self) -> list[int]:
        """The ids of the answer, from the index (the token is still the list's)."""
        return self.catalog.run_ids(self.scope, self.order_by, self.limit)

    def stale_answer(self) -> list[Experiment]:
        """The runs the list held when it was made (the index changed since)."""
        if self.derive is not None:
            return self.derive()
        return self.catalog._runs_by_ids(self.ids, self.pool)


class ExperimentList(list):  # type: ignore[type-arg]
    """A list of :class:`Experiment` with selection helpers.

    Lists from :meth:`Experiment.load_all` and :meth:`Catalog.find` are bound to
    the index: they are returned at once, and the Experiment objects are built
    when the list is first read (iterated, indexed, ``len``...), for the index as
    it is then. Until then, and afterwards while neither the list nor the index
    has changed, :meth:`filter_by_exec_args`, :meth:`where`, :meth:`latest`,
    :meth:`sort_by_score`, :meth:`top` and :meth:`to_frame` are SQL queries that
    build objects only for their answer. A list built by hand (or changed after
    it was read) computes the same answers in memory.

    Every way of reading a list gives what an eager list would (``len``,
    iteration, ``list(x)``, slicing, ``in``, ``sorted``, ``copy``, pickling,
    ``pandas.DataFrame(x)``, comparisons); ``bool(x)`` asks the index whether
    any run matches.
    """

    # Class-level defaults: a list made by a list method (copy, slicing) skips __init__.
    _source: _Query | None = None
    _loaded: bool = True
    _snapshot: tuple[Experiment, ...] | None = None

    def __init__(self, exp_iterable: Iterable[Experiment]) -> None:
        super().__init__(exp_iterable)
        for item in self:
            if not isinstance(item, Experiment):
                raise TypeError(f"ExperimentList holds Experiment objects, not {type(item).__name__}")
        self._source = None
        self._loaded = True

    @classmethod
    def _bound(cls, source: _Query) -> ExperimentList:
        """A list that is the answer of ``source``, read from the index when first used."""
        bound = cls([])
        bound._source = source
        bound._loaded = False
        return bound

    def _load(self) -> None:
        """Fill the list from its query (once)."""
        if self._loaded:
            return
        source = self._source
        assert source is not None
        if source.holds():
            experiments = source.catalog._runs(
                source.scope, source.order_by, source.limit, source.pool, source.token
            )
            self._snapshot = tuple(experiments)
        else:
            experiments = source.stale_answer()  # answers in memory from now on
        list.extend(self, experiments)
        self._loaded = True

    def _indexed(self) -> bool:
        """True while the list is the unchanged answer of its query in an unchanged index.

        A list not read yet is its query. Otherwise (the list was edited, or the
        index changed since it was read) answers are computed in memory.
        """
        source = self._source
        if source is None:
            return False
        snapshot = self._snapshot
        if self._loaded and not (
            snapshot is not None
            and len(snapshot) == list.__len__(self)
            and all(map(operator.is_, snapshot, list.__iter__(self)))
        ):
            return False
        return source.holds()

    # ------------------------------------------------------------------ reading the list

    def __bool__(self) -> bool:
        if not self._loaded and self._indexed():
            source = self._source
            assert source is not None
            return source.limit != 0 and source.catalog.any_in(source.scope)
        self._load()
        return list.__len__(self) > 0

    def __radd__(self, other: Any) -> Any:
        # `plain_list + this` reads this list's storage directly: fill it first.
        self._load()
        return NotImplemented

    def __copy__(self) -> ExperimentList:
        self._load()
        copied = ExperimentList(list.__iter__(self))
        copied._source, copied._snapshot = self._source, self._snapshot
        return copied

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled as a plain ExperimentList of its runs (an index connection does not pickle).
        self._load()
        return (ExperimentList, (list(list.__iter__(self)),))

    # ------------------------------------------------------------------ selection

    def filter_by_exec_args(self, *args: str) -> ExperimentList:
        """Return the runs whose exec-args set contains every one of ``args`` (e.g. ``"-lr 0.001"``)."""
        wanted = {" ".join(arg.split()) for arg in args}
        if self._indexed():
            from pyhermes.index.query.filters import has_args

            assert self._source is not None
            return ExperimentList._bound(
                self._source.narrowed(has_args(*wanted), lambda: self.filter_by_exec_args(*args))
            )
        return ExperimentList(item for item in self if wanted <= item.exec_args)

    def latest(self) -> Experiment:
        """Return the run with the most recent start time; runs without one come last.

        Raises:
            ValueError: the list is empty.
        """
        if self._indexed():
            assert self._source is not None
            answer = ExperimentList._bound(
                self._source.ordered(["-start_time"], 1, lambda: [self.latest()])
            )
            answer._load()
            if list.__len__(answer):
                return list.__getitem__(answer, 0)
        elif self:
            return max(self, key=_latest_key)
        raise ValueError("latest() of an empty ExperimentList: no runs to choose from")

    def where(self, condition: Filter | str) -> ExperimentList:
        """Return the runs matching ``condition`` (a filter object or expression text, see the README).

        Raises:
            QueryError: the expression is malformed or names an unknown column.
        """
        condition = as_condition(condition)
        if self._indexed():
            assert self._source is not None
            return ExperimentList._bound(self._source.narrowed(condition, lambda: self.where(condition)))
        return ExperimentList(item for item in self if condition.matches(item))

    def sort_by_score(self, summary: str = "final_mean", descending: bool = True) -> ExperimentList:
        """Return the runs ordered by a score-summary field; runs without a value come last.

        Raises:
            QueryError: ``summary`` is not a score-summary field.
        """
        from pyhermes.index.query.filters import check_summary_field

        check_summary_field(summary)
        if self._indexed():
            assert self._source is not None
            key = f"-{summary}" if descending else summary
            return ExperimentList._bound(
                self._source.ordered([key], None, lambda: self.sort_by_score(summary, descending))
            )
        with_value = [e for e in self if getattr(e.score_summary, summary) is not None]
        without = [e for e in self if getattr(e.score_summary, summary) is None]
        with_value.sort(key=lambda e: getattr(e.score_summary, summary), reverse=descending)
        return ExperimentList(with_value + without)

    def top(self, n: int, by: str = "final_mean") -> ExperimentList:
        """Return the ``n`` best runs by the score-summary field ``by`` (highest first)."""
        if n < 0:
            raise ValueError(f"top(n) needs n >= 0, got {n}")
        if self._indexed():
            from pyhermes.index.query.filters import check_summary_field

            check_summary_field(by)
            assert self._source is not None
            return ExperimentList._bound(self._source.ordered([f"-{by}"], n, lambda: self.top(n, by)))
        return ExperimentList(self.sort_by_score(by)[:n])

    def to_frame(self) -> Any:
        """Return a pandas DataFrame of the runs (see :class:`ExperimentFrame`).

        A list bound to the index gives the full frame (identifier, path, times,
        commit, comments, one column per exec-arg key, one per score summary, and
        the ``experiments`` column) from one SQL query, columns straight into pandas.

        Raises:
            MissingDependencyError: pandas is not installed.
        """
        if self._indexed():
            source = self._source
            assert source is not None
            return source.catalog._frame(source, self if self._loaded else None)
        return ExperimentFrame(self)

    def plot_scores(
        self,
        group_by: str | Sequence[str] | None = None,
        window: int = 100,
        band: str | None = "std",
        ax: Any = None,
        path: PathLike | None = None,
        *,
        min_runs: int | None = None,
    ) -> Any:
        """Plot the smoothed learning curves, one line per group (mean over its runs); return the Figure.

        See :func:`pyhermes.curves.plot_grouped_scores` for the rules (``min_runs``:
        how many runs must reach an episode for the line to go on; default half the group).
        """
        from pyhermes.curves import plot_grouped_scores

        return plot_grouped_scores(
            self, group_by=group_by, window=window, band=band, ax=ax, path=path, min_runs=min_runs
        )


    def plot(
        self,
        *,
        group_by: str | Sequence[str] | None = None,
        band: str | None = "std",
        window: int = 100,
        min_runs: int | None = None,
        ax: Any = None,
    ) -> Any:
        """Draw the grouped learning curves (the Compare page's chart); return the matplotlib Figure.

        The notebook shortcut of :meth:`plot_scores`: the same rules
        (:mod:`pyhermes.curves`), keyword arguments only. Without ``ax`` the figure is
        not registered with pyplot (no window opens; a notebook shows the returned
        figure inline, once).

        Raises:
            ValueError: see :func:`pyhermes.curves.plot_grouped_scores`.
            MissingDependencyError: matplotlib is not installed.
        """
        if ax is None:
            from pyhermes._optional import require

            figure = require("matplotlib.figure").Figure(figsize=(10, 6), layout="constrained")
            ax = figure.add_subplot()
        return self.plot_scores(
            group_by=group_by, window=window, band=band, ax=ax, min_runs=min_runs
        )


class ExperimentFrame:
    """``ExperimentFrame(experiments)`` builds a pandas DataFrame of runs.

    It has an ``experiments`` column (the Experiment objects) and one column per
    exec-arg key found in any run (the union; ``None`` where a run lacks it).
    Calling it returns a plain :class:`pandas.DataFrame`.

    Raises:
        MissingDependencyError: pandas is not installed.
    """

    def __new__(cls, experiments: Iterable[Experiment]) -> Any:  # type: ignore[misc]
        from pyhermes._optional import require

        pd = require("pandas")
        runs = list(experiments)
        columns: dict[str, list[Any]] = {"experiments": runs}
        dicts = [run.exec_args_dict for run in runs]
        keys: dict[str, None] = {}
        for args in dicts:
            keys.update(dict.fromkeys(args))
        for key in keys:
            columns[key] = [args.get(key) for args in dicts]
        return pd.DataFrame(columns, index=range(len(runs)))


def _reading(name: str) -> Any:
    """A list method of ExperimentList that fills a bound list before doing what list does."""
    method = getattr(list, name)

    def read_first(self: ExperimentList, *args: Any, **kwargs: Any) -> Any:
        self._load()
        for arg in args:  # list's C code reads another list's storage directly (==, +)
            if isinstance(arg, ExperimentList):
                arg._load()
        return method(self, *args, **kwargs)

    read_first.__name__ = read_first.__qualname__ = name
    read_first.__doc__ = method.__doc__
    return read_first


# Every list method that reads or changes the items (C code such as numpy's, which
# reads a list's storage directly, first asks for the length).
for _name in (
    "__len__", "__iter__", "__reversed__", "__getitem__", "__contains__", "__eq__", "__ne__",
    "__lt__", "__le__", "__gt__", "__ge__", "__repr__", "__add__", "__iadd__", "__mul__",
    "__rmul__", "__imul__", "__setitem__", "__delitem__", "__sizeof__", "append", "extend",
    "insert", "remove", "pop", "clear", "index", "count", "sort", "reverse", "copy",
):
    setattr(ExperimentList, _name, _reading(_name))
del _name


class _Batch:
    """Fills info, args and score summaries of many indexed runs, with one query each."""

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
            elif what == "summary" and experiment._summary is None and run_id in found:
                fields = found[run_id]
                fields["count"] = fields["count"] or 0
                experiment._summary = ScoreSummary(**fields)


def _renew(pool: _Pool, token: str | None) -> None:
    """Empty ``pool`` unless its objects were built at the index state ``token``."""
    if pool.token != token or token is None:
        pool.runs = {}
        pool.token = token


# Runs built for a folder, by (index URL, root, folder, recursive): reused while the index is unchanged.
_POOLS: dict[tuple[str, str, str, bool], _Pool] = {}


class Catalog(RunIndex):
    """The index of the run directories below a folder, answering with runs.

    Open it with :meth:`open`; query with :meth:`find`, :meth:`count` and
    :meth:`sql`. (The SQL side is :class:`pyhermes.index.run_index.RunIndex`.)
    """

    def load_runs(
        self, path: PathLike, *, recursive: bool = False, sync: str = "quick"
    ) -> ExperimentList:
        """Sync the runs in ``path`` (its tree with ``recursive``) and return them, ordered by path.

        The list is bound to the index (see :class:`ExperimentList`). While the
        index is unchanged, lists of the same folder hold the same Experiment objects.
        """
        self.refresh(path, recursive=recursive, mode=sync)
        rel = self._rel(path)
        key = (self.url, str(self.root), rel, recursive)
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = _Pool()
        return self._bound_list(under(rel, recursive), ["path"], None, pool)

    def _bound_list(
        self, scope: Filter, order_by: Sequence[str], limit: int | None, pool: _Pool
    ) -> ExperimentList:
        """A list bound to ``scope``, with the ids it holds now (its answer should the index change).

        A list of at most ``limit`` runs is read at once (one query gives both).
        """
        token = self.change_token()
        if limit is not None:
            experiments = self._runs(scope, order_by, limit, pool, token)
            ids = [experiment._run_id for experiment in experiments]
            bound = ExperimentList._bound(_Query(self, scope, order_by, limit, pool, token, ids))
            list.extend(bound, experiments)
            bound._snapshot, bound._loaded = tuple(experiments), True
            return bound
        ids = self.run_ids(scope, order_by, limit)
        return ExperimentList._bound(_Query(self, scope, order_by, limit, pool, token, ids))

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
        Without ``limit`` and ``offset`` the list is bound to the index: further
        ``where``/``filter_by_exec_args``/``latest`` calls on it are SQL too.

        Raises:
            QueryError: a malformed expression, unknown column or bad sort key.
        """
        from pyhermes.index.query.filters import sort_columns

        if limit is not None and limit < 0:
            raise QueryError(f"limit must be >= 0, got {limit}")
        condition = self._scope() & as_condition(where)
        keys = [part for part in order_by.split(",") if part.strip()] if isinstance(order_by, str) else list(order_by or [])
        sort_columns(keys)  # a bad key fails here, not when the list is read
        if offset:
            return ExperimentList(self._runs(condition, keys, limit, _Pool(), None, offset))
        return self._bound_list(condition, keys, limit, _Pool())

    def get(self, run: str) -> Experiment:
        """Return one run by path (absolute, or relative to the current directory) or identifier prefix.

        Raises:
            QueryError: no run, or more than one run, matches.
        """
        candidate = Path(run)
        if candidate.is_dir():
            scope = under(self._rel(candidate.parent), False) & path_is(self._rel(candidate))
            found = self._runs(scope, [], None, _Pool(), None)
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
        pool: _Pool,
        token: str | None,
        offset: int = 0,
    ) -> list[Experiment]:
        """Build (or take from ``pool``) the Experiment objects of the matching runs, in order."""
        rows = self.run_rows(condition, order_by, limit, offset)
        _renew(pool, token)
        return self._objects(rows, pool)

    def _runs_by_ids(self, ids: Sequence[int], pool: _Pool) -> list[Experiment]:
        """The runs of ``ids`` still in the index, in that order."""
        if not ids:
            return []
        rows = {row[0]: row for row in self.run_rows(self.ids_in(ids))}
        return self._objects((rows[run_id] for run_id in ids if run_id in rows), pool)

    def _objects(self, rows: Iterable[tuple[Any, ...]], pool: _Pool) -> list[Experiment]:
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

    def _frame(self, source: _Query, loaded: ExperimentList | None) -> Any:
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

