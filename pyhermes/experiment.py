"""One run directory: :class:`Experiment` (documented in ``pyhermes.storage``, its home for users).

An :class:`Experiment` is one run directory. Its attributes come from the files
(``hermes.info``, ``exec_arguments``, ``hermes.tags``, ``hermes.notes``) or, for runs
loaded through the index, from the index without reading files; file-backed methods
(``scores()``, ``result``, logs, state dicts) always read the disk.

Dependencies point one way: :mod:`pyhermes.runlist` (lists) <- this module <-
:mod:`pyhermes.catalog`. :meth:`Experiment.load_all` calls the loader that
:mod:`pyhermes.catalog` installs on import (:func:`install_loader`; ``pyhermes``,
``pyhermes.storage`` and pickles of runs import it), and this module makes its runs
what a list holds (:func:`pyhermes.runlist.hold`). Nothing heavy is imported here:
numpy, pandas, torch and SQLAlchemy load when a method needs them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pyhermes import rundir
from pyhermes.index.run_index import RunIndex, check_sync_mode, curation_through, write_through
from pyhermes.runlist import ExperimentList, TagChange, hold

if TYPE_CHECKING:
    import numpy as np

    from pyhermes.summary import ScoreSummary

__all__ = ["Experiment", "TagChange", "install_loader"]  # TagChange: defined in pyhermes.runlist

PathLike = rundir.PathLike

#: What :meth:`Experiment.load_all` calls once its arguments are checked: installed by
#: :mod:`pyhermes.catalog` (see :func:`install_loader`).
_LOADER: list[Callable[..., ExperimentList[Experiment]]] = []


#: The attributes of a run built from the index that are read when first asked for.
_UNREAD = dict.fromkeys(
    ("_info", "_exec_arg_lines", "_exec_args_dict", "_summary", "_tags", "_notes", "_pending_comments")
)


def install_loader(loader: Callable[..., ExperimentList[Experiment]]) -> None:
    """Make ``loader(root, *, recursive, index, sync, archived)`` what :meth:`Experiment.load_all` returns
    (called by :mod:`pyhermes.catalog` on import)."""
    _LOADER[:] = [loader]


class Experiment:
    """One run directory of the legacy hermes layout.

    Construct with :meth:`load`, :meth:`load_all` or :meth:`create`; the
    constructor is the documented low-level one.
    """

    __module__ = "pyhermes.storage"  # its documented home (reprs, pickles)

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
        self._tags: list[str] | None = None
        self._notes: list[rundir.Note] | None = None
        self._pending_comments: list[str] | None = None
        self._catalog: RunIndex | None = None
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
        cls, run_dir: str, identifier: str, commit_hash: str | None, start_time: datetime | None,
        catalog: RunIndex, run_id: int, batch: Any,
    ) -> Experiment:
        """Build a run whose attributes come from the index (no file is read)."""
        experiment = cls.__new__(cls)
        experiment.__dict__.update(
            _UNREAD, identifier=identifier, _path=run_dir, commit_hash=commit_hash,
            start_time=start_time, _catalog=catalog, _run_id=run_id, _batch=batch,
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
        return cls._from_parts(path, rundir.read_info(path), rundir.read_exec_args(path))

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
        archived: bool = False,
    ) -> ExperimentList[Experiment]:
        """Load every run directory below ``path``; return the runs, ordered by path.

        Without ``recursive`` only the direct subdirectories of ``path`` holding a
        ``hermes.info`` are runs (the documented behaviour, ``path`` being an
        ``<experiment_name>`` folder); with it the whole tree is searched. Directory
        symlinks are not followed. A run that cannot be read is skipped with one
        warning for the whole load; the others load.

        The index (see the README, "Where the index lives") is kept in sync and
        answers later queries: ``index`` is a file path or SQLAlchemy URL, ``None``
        for the default place, or ``False`` to scan the disk without any index.
        ``sync`` is ``"quick"``, ``"full"`` or ``"none"`` (see the README).

        With ``archived``, the runs archived under ``<path>/.archive/`` (``hermes archive``)
        instead: its whole tree read from disk (the index holds live runs only;
        ``recursive``, ``index`` and ``sync`` are ignored; no such folder: no runs).

        Raises:
            FileNotFoundError: ``path`` is not a directory.
            ValueError: ``sync`` is not a known mode.
            CatalogError: ``sync="none"`` and no index serves ``path`` yet.
        """
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"no such directory: {root}")
        check_sync_mode(sync)  # before an index is made for nothing
        if not _LOADER:
            raise RuntimeError("Experiment.load_all needs pyhermes.catalog: import Experiment from pyhermes")
        return _LOADER[0](root, recursive=recursive, index=index, sync=sync, archived=archived)

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

        Raises RuntimeError when the run is already finished.
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
        if index is not False:
            write_through(self, index)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the run's values, not its index: what came from the index is filled in first."""
        if self._batch is not None:
            for what in ("info", "args", "summary", "tags", "notes"):
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
    def tags(self) -> list[str]:
        """The run's tags (its ``hermes.tags``), sorted; from the index when the run came from it."""
        return list(self._curation("tags"))

    @property
    def notes(self) -> list[rundir.Note]:
        """The run's notes (its ``hermes.notes``; ``Note(time, text)``), oldest first."""
        return list(self._curation("notes"))

    def _curation(self, what: str) -> Any:
        """The run's ``"tags"`` or ``"notes"``: from its batch (the index), else its file."""
        if self.__dict__.get(f"_{what}") is None and self._batch is not None:
            self._batch.fill(what)
        if self.__dict__.get(f"_{what}") is None:  # (.get: a run pickled before tags existed)
            read = rundir.read_tags if what == "tags" else rundir.read_notes
            self.__dict__[f"_{what}"] = read(self.path_to_experiment)
        return self.__dict__[f"_{what}"]

    def add_tags(self, *tags: str) -> TagChange:
        """Add ``tags`` to the run: its ``hermes.tags`` first, then its index. Raises as
        :meth:`ExperimentList.add_tags` (a bad tag: InvalidTagError, nothing written)."""
        return ExperimentList([self]).add_tags(*tags)[0]

    def remove_tags(self, *tags: str) -> TagChange:
        """Take ``tags`` from the run (those it has); raises as :meth:`add_tags`."""
        return ExperimentList([self]).remove_tags(*tags)[0]

    def add_note(self, text: str) -> rundir.Note:
        """Append the note ``text``, timed now, to the run's ``hermes.notes``, then to its index;
        return it. Raises ValueError for a blank or too long text (nothing written), OSError
        (see :func:`pyhermes.rundir.append_note`)."""
        note = rundir.append_note(self.path_to_experiment, text)
        self._notes = rundir.read_notes(self.path_to_experiment)
        curation_through([self], ("notes",))
        return note

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
        name = preferred if preferred in names else names[0]
        if name != preferred and len(names) > 1:
            warnings.warn(f"run {self.identifier} holds {len(names)} result files; loading {name}", stacklevel=2)
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

        Raises FileNotFoundError (no such file) or ValueError (a name outside the run directory).
        """
        source, destination = self._transfer_paths(path_to_file, new_file_name)
        shutil.copyfile(source, destination)
        return destination

    def move_file(self, path_to_file: PathLike, new_file_name: str | None = None) -> Path:
        """Move a file into the run directory (as ``new_file_name`` or its own name); return the new path.

        Raises as :meth:`copy_file`.
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


hold(Experiment)
