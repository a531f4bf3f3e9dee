"""Lists of runs: :class:`ExperimentList`, bound to the index or built by hand, and :class:`ExperimentFrame`.

A list from :meth:`Experiment.load_all` or :meth:`Catalog.find` is *bound*: it is
the answer of a :class:`BoundQuery` (the runs of a scope, in an order, from the
catalog it came from) and costs what is used of it. Until it is read whole
(iterated, ``list(x)``, compared, pickled...), and while the index still answers
for it, its questions (``where``, ``latest``, ``top``...) and ``bool`` are SQL,
``len`` is a count (none for a folder's list), and ``x[i]``/``x[a:b]`` read its ids
once into one ``array('q')`` (8 bytes a run) and build only the runs they return:
no Experiment object exists for a run nobody touched. Read whole, it builds its
objects once and is an ordinary list from then on. A list built by hand, or
changed after it was read, answers in memory.

Dependencies point one way: this module names neither :class:`Experiment` nor
:class:`Catalog`, which both import it (``pyhermes.experiment`` for the type of
``load_all``, ``pyhermes.catalog`` to bind lists). A list reads through the
:class:`RunSource` it is bound to (the catalog: a ``Protocol`` of
:mod:`pyhermes.index.query.bound`, with :class:`BoundQuery`), and holds
the runs of the class :mod:`pyhermes.experiment` installs with :func:`hold` when
it is imported (no Experiment can exist before): ``ExperimentList(items)``
refuses anything else. For type checkers the list is generic in its runs:
``load_all`` returns ``ExperimentList[Experiment]``.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

from pyhermes.index.query.bound import LOAD_ORDER, BoundQuery, RunPool, RunSource
from pyhermes.index.query.filters import Filter
from pyhermes.index.query.runs import as_condition
from pyhermes.rundir import PathLike

__all__ = [
    "ExperimentList", "ExperimentFrame", "BoundQuery", "RunPool", "RunSource", "TagChange", "hold",
    "LOAD_ORDER",
]

_R = TypeVar("_R")

#: The class of the runs a list holds (one): installed by :mod:`pyhermes.experiment` on import.
_HELD: list[type] = []


def hold(run_class: type) -> None:
    """Make ``run_class`` (:class:`pyhermes.experiment.Experiment`) what an ExperimentList holds."""
    _HELD[:] = [run_class]


class TagChange(NamedTuple):
    """What ``add_tags``/``remove_tags`` did to one run (an Experiment): its tags ``before``
    and ``after``, each sorted."""

    run: Any
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when the run's tags changed (its ``hermes.tags`` was written)."""
        return self.before != self.after


TagChange.__module__ = "pyhermes.experiment"  # where the API documents it (and re-exports it)


def _latest_key(experiment: Any) -> tuple[int, float]:
    start = experiment.start_time
    return (0, 0.0) if start is None else (1, start.timestamp())


class ExperimentList(list[_R]):
    """A list of :class:`Experiment` with selection helpers.

    Lists from :meth:`Experiment.load_all` and :meth:`Catalog.find` are bound to
    the index: they are returned at once, and cost what is used of them. While
    the list is not read whole and the index still answers for it:

    * :meth:`filter_by_exec_args`, :meth:`where`, :meth:`latest`, :meth:`sort_by_score`,
      :meth:`top` and :meth:`to_frame` are SQL queries that build objects only for
      their answer (and stay so after the list is read, while neither it nor the
      index changed); ``bool(x)`` asks whether any run matches;
    * ``len(x)`` is known (a folder's list) or one count, and builds nothing;
    * ``x[i]`` and ``x[a:b:c]`` read the list's run ids once (one ``array('q')``,
      8 bytes a run, per change of the index) and build only the runs returned;
      ``x[i]`` for one of the first runs reads one page instead. A slice is a plain
      list, as a list's slice is.

    Everything else (iteration, ``list(x)``, ``in``, ``sorted``, comparisons,
    ``copy``, pickling, ``numpy.array(x)``, ``pandas.DataFrame(x)``, any change) reads
    the whole list first: its Experiment objects are built once, for the index as
    it is then, and it is an ordinary list from then on. A run is one object in
    every list of its folder (see :class:`RunPool`). Should the index change under
    an unread list, it answers for the runs it held (see :class:`BoundQuery`). A
    list built by hand (or changed after it was read) computes the same answers in
    memory. Every way of reading a list gives what an eager list would.
    """

    __module__ = "pyhermes.storage"  # its documented home (reprs, pickles)

    # Class-level defaults: a list made by a list method (copy, slicing) skips __init__.
    _source: BoundQuery | None = None
    _loaded: bool = True
    _snapshot: tuple[Any, ...] | None = None

    def __init__(self, exp_iterable: Iterable[_R]) -> None:
        super().__init__(exp_iterable)
        held = _HELD[0] if _HELD else None
        for item in self:
            if held is None or not isinstance(item, held):
                raise TypeError(f"ExperimentList holds Experiment objects, not {type(item).__name__}")
        self._source = None
        self._loaded = True

    @classmethod
    def _bound(cls, source: BoundQuery) -> ExperimentList[Any]:
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

    def _unread(self) -> BoundQuery | None:
        """The query of a list not read yet, while the index still answers it (SQL answers
        for the list); ``None`` once the list is read, or when it answers for what it held."""
        if self._loaded or not self._indexed():
            return None
        return self._source

    def __len__(self) -> int:
        """Return len(self): of an unread list, its fingerprint or one count (nothing is built)."""
        source = self._unread()
        if source is None:
            self._load()
            return list.__len__(self)
        return source.count()

    def __getitem__(self, at: Any) -> Any:
        """Return self[at]: of an unread list, only the runs returned are built (a slice is a
        plain list, as a list's slice is).

        Raises:
            IndexError: the index is out of range.
            TypeError: ``at`` is neither an integer nor a slice.
        """
        source = self._unread()
        if source is not None and isinstance(at, slice):
            runs = source.runs_in(at)
            if runs is not None:
                return runs
        elif source is not None and hasattr(type(at), "__index__"):
            runs = source.run_at(operator.index(at))
            if runs is not None:
                return runs[0]
        self._load()
        return list.__getitem__(self, at)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        """Return the runs as a 1-D numpy array of objects (``numpy.array(runs)``, pandas): the
        whole list is read first (numpy may read a list's storage directly once it has its
        length, which no longer reads an unread list).

        Raises:
            ValueError: ``copy=False`` (an array of a list's items is always a new array).
        """
        import numpy as np

        if copy is False:
            raise ValueError("Unable to avoid copy while creating an array as requested.")
        self._load()
        values = np.fromiter(list.__iter__(self), dtype=object, count=list.__len__(self))
        return values if dtype is None or np.dtype(dtype) == values.dtype else values.astype(dtype)

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

    def __copy__(self) -> ExperimentList[_R]:
        self._load()
        copied = ExperimentList(list.__iter__(self))
        copied._source, copied._snapshot = self._source, self._snapshot
        return copied

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled as a plain ExperimentList of its runs (an index connection does not pickle).
        self._load()
        return (ExperimentList, (list(list.__iter__(self)),))

    # ------------------------------------------------------------------ selection

    def filter_by_exec_args(self, *args: str) -> ExperimentList[_R]:
        """Return the runs whose exec-args set contains every one of ``args`` (e.g. ``"-lr 0.001"``)."""
        wanted = {" ".join(arg.split()) for arg in args}
        if self._indexed():
            from pyhermes.index.query.arg_filters import has_args

            assert self._source is not None
            return ExperimentList._bound(
                self._source.narrowed(has_args(*wanted), lambda: self.filter_by_exec_args(*args))
            )
        return ExperimentList(item for item in self if wanted <= item.exec_args)

    def bound_table(self, limit: int) -> tuple[Any, int, bool] | None:
        """The first ``limit`` runs of the list as a runs table with the default columns, the
        list's length, and whether the rows are its newest runs first: read from the index
        (the one runs-table path, :meth:`pyhermes.index.query.runs.RunQueries.table`: one
        count and one page, however long the list) while the list is its unchanged query;
        ``None`` for a list that answers in memory (its runs are read from the objects then).

        A list in load order (what ``load_all`` returns) shows its newest runs first, as
        the Runs page does; a sorted list (``top``, ``order_by``) shows its own order."""
        if not self._indexed():
            return None
        source = self._source
        assert source is not None
        held = source.runs_held()
        newest_first = tuple(source.order_by) == LOAD_ORDER
        order = ["-start_time"] if newest_first else source.order_by
        page = source.catalog.table(held, None, order, limit)
        return page, source.catalog.count_in(held), newest_first

    def latest(self) -> _R:
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

    def where(self, condition: Filter | str) -> ExperimentList[_R]:
        """Return the runs matching ``condition`` (a filter object or expression text, see the README).

        An exec-arg key that expression text names must be a key of some run: of the
        index for a bound list, of the list's runs for a list built by hand.

        Raises:
            QueryError: the expression is malformed or names an unknown column.
            UnknownKeyError: the text names an exec-arg key no run has (a QueryError whose
                message names the closest known keys).
        """
        from pyhermes.index.query import known_keys

        written = isinstance(condition, str)
        condition = as_condition(condition)
        if self._indexed():
            assert self._source is not None
            if written:
                known_keys.check_index_keys(condition, self._source.catalog)  # type: ignore[arg-type]
            return ExperimentList._bound(self._source.narrowed(condition, lambda: self.where(condition)))
        if written:
            known_keys.check_list_keys(condition, self)
        return ExperimentList(item for item in self if condition.matches(item))

    def sort_by_score(self, summary: str = "final_mean", descending: bool = True) -> ExperimentList[_R]:
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

    def top(self, n: int, by: str = "final_mean") -> ExperimentList[_R]:
        """Return the ``n`` best runs by the score-summary field ``by`` (highest first)."""
        if n < 0:
            raise ValueError(f"top(n) needs n >= 0, got {n}")
        if self._indexed():
            from pyhermes.index.query.filters import check_summary_field

            check_summary_field(by)
            assert self._source is not None
            return ExperimentList._bound(self._source.ordered([f"-{by}"], n, lambda: self.top(n, by)))
        return ExperimentList(self.sort_by_score(by)[:n])

    def add_tags(self, *tags: str) -> list[TagChange]:
        """Add ``tags`` to every run of the list; return one :class:`TagChange` per run, in order.

        Every tag is checked first (a bad tag: nothing is written anywhere). Each run's
        ``hermes.tags`` is changed under a lock of its directory, written only if it
        changes (:func:`pyhermes.rundir.change_tags`); then the index holding the runs is
        updated, one transaction per 4000 runs, so lists bound to it see the new tags.

        Raises:
            InvalidTagError: a tag is empty, too long, or holds a line break or a path separator.
            OSError, RunFormatError: a run could not be changed (the others are).
        """
        return self._tagged(tags, ())

    def remove_tags(self, *tags: str) -> list[TagChange]:
        """Take ``tags`` from every run of the list (those it has); as :meth:`add_tags`."""
        return self._tagged((), tags)

    def _tagged(self, add: Sequence[str], remove: Sequence[str]) -> list[TagChange]:
        from pyhermes.index.run_index import change_tags_of

        runs = list(self)
        return [TagChange(run, tuple(old), tuple(new)) for run, old, new in change_tags_of(runs, add, remove)]

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

    __module__ = "pyhermes.storage"  # its documented home

    def __new__(cls, experiments: Iterable[Any]) -> Any:  # type: ignore[misc]
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

    def read_first(self: ExperimentList[Any], *args: Any, **kwargs: Any) -> Any:
        self._load()
        for arg in args:  # list's C code reads another list's storage directly (==, +)
            if isinstance(arg, ExperimentList):
                arg._load()
        return method(self, *args, **kwargs)

    read_first.__name__ = read_first.__qualname__ = name
    read_first.__doc__ = method.__doc__
    return read_first


# Every list method that reads or changes the items, but len() and [i]/[a:b]: an unread
# list answers those from its count and ids (and numpy reads it through __array__).
for _name in (
    "__iter__", "__reversed__", "__contains__", "__eq__", "__ne__",
    "__lt__", "__le__", "__gt__", "__ge__", "__repr__", "__add__", "__iadd__", "__mul__",
    "__rmul__", "__imul__", "__setitem__", "__delitem__", "__sizeof__", "append", "extend",
    "insert", "remove", "pop", "clear", "index", "count", "sort", "reverse", "copy",
):
    setattr(ExperimentList, _name, _reading(_name))
del _name


