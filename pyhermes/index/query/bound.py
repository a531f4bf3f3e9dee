"""What a bound list is the answer of: :class:`BoundQuery`, read through a :class:`RunSource`.

A list from :meth:`Experiment.load_all` or :meth:`Catalog.find`
(:class:`pyhermes.runlist.ExperimentList`, which re-exports these names) is bound to a
:class:`BoundQuery`: the runs of a scope, in an order, from the catalog it came from
(a :class:`RunSource` here: this module names neither the catalog nor the runs). The
query knows whether the index still answers for the list (:meth:`BoundQuery.holds`),
what the list held should it not (:meth:`BoundQuery.stale_answer`), and reads as
little of the answer as is asked: its length (:meth:`BoundQuery.count`), its run ids
as one ``array('q')`` (:meth:`BoundQuery.id_array`, 8 bytes a run), the runs of some
of them (:meth:`BoundQuery.runs_of`), built once per run in a :class:`RunPool`.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from pyhermes.index.query.filters import Filter

__all__ = ["BoundQuery", "RunPool", "RunSource"]

#: The order of the list ``load_all`` returns (the legacy scan's: by path).
LOAD_ORDER = ("path",)

#: The runs of a list's slice are read by id, this many per query.
IDS_PER_QUERY = 10_000

#: ``x[i]`` of an unread list for ``0 <= i <`` this reads one page of its query, not its ids.
HEAD = 100


class RunSource(Protocol):
    """What a bound list reads through: the :class:`pyhermes.catalog.Catalog` that bound it."""

    def change_token(self) -> str | None: ...

    def holds_exactly(self, condition: Filter, run_ids: Sequence[int]) -> bool: ...

    def count_and_newest(self, condition: Filter) -> tuple[int, int | None]: ...

    def ids_in(self, run_ids: Iterable[int]) -> Filter: ...

    def run_ids(
        self, where: Filter | str | None = None, order_by: Sequence[str] | str | None = None,
        limit: int | None = None, offset: int = 0,
    ) -> list[int]: ...

    def run_id_array(
        self, where: Filter, order_by: Sequence[str] | str | None = None, limit: int | None = None,
    ) -> array[int]: ...

    def any_in(self, condition: Filter) -> bool: ...

    def count_in(self, condition: Filter) -> int: ...

    def table(
        self, where: Filter | str | None = None, columns: Sequence[str] | None = None,
        order_by: Sequence[str] | str | None = None, limit: int | None = None, offset: int = 0,
    ) -> Any: ...

    def _runs(
        self, condition: Filter, order_by: Sequence[str], limit: int | None, pool: RunPool,
        token: str | None, offset: int = 0,
    ) -> list[Any]: ...

    def _runs_by_ids(self, ids: Sequence[int], pool: RunPool) -> list[Any]: ...

    def _runs_up_to(self, scope: Filter, order_by: Sequence[str], newest: int | None, pool: RunPool) -> list[Any]: ...

    def _frame(self, source: BoundQuery, loaded: list[Any] | None) -> Any: ...


class RunPool:
    """The Experiment objects built from one index for one folder, by run id, while it is unchanged.

    Lists answered by the index for the same folder reuse these objects, so a
    run is one object however many lists hold it.
    """

    def __init__(self) -> None:
        self.token: str | None = None
        self.runs: dict[int, Any] = {}


class BoundQuery:
    """What a bound list is the answer of: the runs of ``catalog`` matching ``scope``, in order.

    ``token`` is the index's change token the answer holds for. Should the index
    change before the list is read, the list gives what it would have held then:
    a list from :meth:`Catalog.load_runs` or :meth:`Catalog.find` the runs of
    ``ids`` (taken when it was made); a list derived from another, ``derive``
    applied in memory to that list. A change elsewhere in the index (a live lab
    writes all day) leaves the answer as it was: see :meth:`holds`.

    The list of a folder (:meth:`Catalog.load_runs`, :meth:`Experiment.load_all`)
    reads no ids when made: its scope is the runs below a path, which no later
    write moves in or out, so a ``fingerprint`` does, the count and newest id of
    those runs (one aggregate over the path index): the runs it held are those
    still there up to that id (a new run's id is above every id the index held).
    Its runs are read once, when the list is read whole; before that its length is
    the fingerprint's count, and ``x[i]``/``x[a:b]`` read its ids once (:meth:`id_array`).
    """

    __slots__ = (
        "catalog", "scope", "order_by", "limit", "pool", "token", "ids", "derive", "root", "fingerprint",
        "counted", "read_ids", "handed",
    )

    def __init__(
        self,
        catalog: RunSource,
        scope: Filter,
        order_by: Sequence[str],
        limit: int | None,
        pool: RunPool,
        token: str | None,
        ids: Sequence[int] = (),
        derive: Callable[[], list[Any]] | None = None,
        root: BoundQuery | None = None,
        fingerprint: tuple[int, int | None] | None = None,
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
        self.fingerprint = fingerprint
        # What was read of the answer, with the change token it was read at: its length, its ids.
        self.counted: tuple[str | None, int] | None = None
        self.read_ids: tuple[str | None, array[int]] | None = None
        # The runs x[i] and x[a:b] handed out, by id: a folder's list keeps them should they
        # leave the index before it is read whole (an erase()), as an eager list would.
        self.handed: dict[int, Any] = {}

    def runs_held(self) -> Filter:
        """The scope of exactly the runs of this answer (a top(n) is those n runs)."""
        return self.scope if self.limit is None else self.catalog.ids_in(self.ids_now())

    def narrowed(self, condition: Filter, derive: Callable[[], list[Any]]) -> BoundQuery:
        return BoundQuery(
            self.catalog, self.runs_held() & condition, self.order_by, None, self.pool, self.token,
            derive=derive, root=self.root or self,
        )

    def ordered(
        self, order_by: Sequence[str], limit: int | None, derive: Callable[[], list[Any]]
    ) -> BoundQuery:
        return BoundQuery(
            self.catalog, self.runs_held(), order_by, limit, self.pool, self.token,
            derive=derive, root=self.root or self,
        )

    def holds(self) -> bool:
        """True while this query, run now, answers what the list holds (SQL may answer for it).

        So it does while the index is unchanged (its change token); and after a change,
        while the list it derives from (from :meth:`Catalog.load_runs` or :meth:`Catalog.find`,
        with no limit) would still hold exactly the runs it held when made: the change
        was elsewhere in the index. One aggregate query tells that, once per change
        (:meth:`~pyhermes.index.query.runs.RunQueries.holds_exactly`).
        """
        current = self.catalog.change_token()
        if current == self.token:
            return True
        base = self.root or self
        if base.limit is not None or base.derive is not None:
            return False
        if base.token != current:
            if not base._unchanged():
                return False
            base.token = current
        self.token = current
        return True

    def _unchanged(self) -> bool:
        """True when the runs of this (underived) answer are still those it held when made."""
        if self.fingerprint is not None:
            return self.catalog.count_and_newest(self.scope) == self.fingerprint
        return self.catalog.holds_exactly(self.scope, self.ids)

    def ids_now(self) -> list[int]:
        """The ids of the answer, from the index (the token is still the list's)."""
        return self.catalog.run_ids(self.scope, self.order_by, self.limit)

    def stale_answer(self) -> list[Any]:
        """The runs the list held when it was made (the index changed since)."""
        if self.derive is not None:
            return self.derive()
        if self.fingerprint is not None:
            runs = self.catalog._runs_up_to(self.scope, self.order_by, self.fingerprint[1], self.pool)
            still = {run._run_id for run in runs}
            gone = [run for run_id, run in self.handed.items() if run_id not in still]
            if gone and tuple(self.order_by) == LOAD_ORDER:  # in load order: by path
                runs = sorted([*runs, *gone], key=lambda run: str(run.path_to_experiment))
            return runs
        return self.catalog._runs_by_ids(self.ids, self.pool)

    # What a list not read whole reads of its answer; each is called while :meth:`holds`.

    def count(self) -> int:
        """How many runs the answer holds: its ids' length once read; for a folder's list, its
        fingerprint; for a list from :meth:`Catalog.find`, its ids; else one count."""
        if self.read_ids is not None and self.read_ids[0] == self.token:
            return len(self.read_ids[1])
        if self.counted is not None and self.counted[0] == self.token:
            return self.counted[1]
        if self.fingerprint is not None:
            count = self.fingerprint[0]
        elif self.derive is None and self.limit is None:
            count = len(self.ids)
        else:
            count = self.catalog.count_in(self.scope)
            count = count if self.limit is None else min(count, self.limit)
        self.counted = (self.token, count)
        return count

    def id_array(self) -> array[int]:
        """The ids of the answer, in its order, as one ``array('q')``: read once per change token
        of the index (once for the list of a folder or a find in load order: its order is fixed)."""
        fixed = self.root is None and self.derive is None and tuple(self.order_by) == LOAD_ORDER
        if self.read_ids is not None and (fixed or self.read_ids[0] == self.token):
            return self.read_ids[1]
        ids = self.catalog.run_id_array(self.scope, self.order_by, self.limit)
        self.read_ids = (self.token, ids)
        return ids

    def runs_of(self, ids: Sequence[int]) -> list[Any] | None:
        """The runs of ``ids`` (no id twice), in that order, from the pool (one object per run
        at this token, as the whole list would hold); ``None`` if one left the index."""
        catalog = self.catalog
        found: dict[int, Any] = {}
        for start in range(0, len(ids), IDS_PER_QUERY):
            part = ids[start:start + IDS_PER_QUERY]
            for run in catalog._runs(catalog.ids_in(part), [], None, self.pool, self.token):
                found[run._run_id] = run
        (self.root or self).handed.update(found)
        return [found[run_id] for run_id in ids] if len(found) == len(ids) else None

    def run_at(self, at: int) -> list[Any] | None:
        """``[run]``, the run at index ``at`` of the answer (negative from the end), or ``None``
        (it left the index). One of the first runs is one page of the query; others are
        found in :meth:`id_array`.

        Raises:
            IndexError: ``at`` is out of range (as for a list).
        """
        if 0 <= at < HEAD and self.read_ids is None and (self.limit is None or at < self.limit):
            head = self.catalog._runs(self.scope, self.order_by, 1, self.pool, self.token, at)
            if not head:
                raise IndexError("list index out of range")
            (self.root or self).handed.update((run._run_id, run) for run in head)
            return head
        ids = self.id_array()
        if not -len(ids) <= at < len(ids):
            raise IndexError("list index out of range")
        return self.runs_of([ids[at]])

    def runs_in(self, at: slice) -> list[Any] | None:
        """The runs of the slice ``at`` of the answer, or ``None`` when the slice holds most of
        it (the whole list is then read: one query instead of thousands of ids)."""
        ids = self.id_array()
        picked = ids[at]
        return None if len(picked) > max(IDS_PER_QUERY, len(ids) // 2) else self.runs_of(picked)
