"""The data of a hyperparameter view in one SQL statement: which exec args vary among the runs
a filter matches, and the values of those args with one score summary for (a sample of) them.

:func:`hparam_rows` runs one ``WITH ... SELECT`` whose parts are told apart by their first
column:

* the counts: the runs matched, and those with scores and a value of the summary;
* per exec-arg key of the matched runs: how many of them hold it, how many of its values
  are not numbers (flags included), its smallest and largest value as text (a flag's
  value counts as ``""``): a key varies when it is missing from some runs or those two
  differ (a key repeated within a run counts once per line);
* the runs shown: the runs with a score, or a sample of ``limit`` of them chosen by a hash
  of their id (spread over the whole index, the same for the same filter), with their
  identifier, path and summary;
* their arguments.

The statement is the same on SQLite and PostgreSQL (bound values, typed ``NULL`` columns).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pyhermes.errors import QueryError
from pyhermes.index.query.filters import ARG, RUN, Filter, Params, under
from pyhermes.index.rules import disk_name, relative
from pyhermes.index.store.layout import SUMMARY_COLUMNS
from pyhermes.index.store.sql_reader import Reader

__all__ = ["HparamSource", "KeyStats", "HparamRows", "hparam_rows", "SAMPLE_MULTIPLIER"]

#: Multiplier of the id hash that orders a sample (Knuth's multiplicative hash, mod 2**32).
SAMPLE_MULTIPLIER = 2654435761


class HparamSource(Protocol):
    """What :func:`hparam_rows` reads: an open index (a :class:`~pyhermes.Catalog`)."""

    root: Path
    reader: Reader

    @property
    def folder(self) -> Path | None: ...


@dataclass(frozen=True)
class KeyStats:
    """One exec-arg key over the matched runs: ``runs`` holding it (lines, to be exact),
    ``non_numbers`` of its values that are not numbers (flags included), its ``low`` and
    ``high`` value as text (``""`` for a flag)."""

    key: str
    runs: int
    non_numbers: int
    low: str
    high: str

    def varies(self, matched: int) -> bool:
        """Whether the key differs among ``matched`` runs: missing from some, or two values."""
        return self.runs < matched or self.low != self.high


@dataclass
class HparamRows:
    """What :func:`hparam_rows` returns.

    ``matched`` runs match the filter, ``scored`` of them have scores and a value of the
    summary; ``keys`` describe every exec-arg key of the matched runs (sorted by key).
    The runs shown (all scored runs, or a sample when more than the limit) are
    ``run_ids``, ``identifiers``, ``paths`` (relative to the index root) and ``scores``,
    in the same order; ``args[run_id][key]`` is ``(value, number)`` of the first
    occurrence of each key in that run (``value`` ``None`` for a flag).
    """

    summary: str
    matched: int = 0
    scored: int = 0
    keys: list[KeyStats] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    args: dict[int, dict[str, tuple[str | None, float | None]]] = field(default_factory=dict)

    @property
    def sampled(self) -> bool:
        """Whether the runs shown are a sample of the scored runs (not all of them)."""
        return len(self.run_ids) < self.scored


#: Every run of the index: the condition of an unfiltered, unscoped view.
ALL_RUNS = "1 = 1"


def _statement(where: Filter, summary_column: str, limit: int, params: Params) -> str:
    condition = where.sql(params)
    number = "CAST(NULL AS DOUBLE PRECISION)"
    text = "CAST(NULL AS TEXT)"
    whole = "CAST(NULL AS BIGINT)"
    hashed = f"((id * {SAMPLE_MULTIPLIER}) % 4294967296)"
    # Every argument row of the matched runs is read once (the cost of the view); without a
    # filter, no run has to be looked up for it.
    matched_args = "" if condition == ALL_RUNS else "WHERE a.run_id IN (SELECT id FROM matched)"
    # Every summary but the count is NULL without scores: the matched runs then need no more
    # than the summary's column, which its index may hold.
    scored = "score > 0" if summary_column == SUMMARY_COLUMNS["count"] else "score IS NOT NULL"
    return f"""
WITH matched AS (
    SELECT {RUN}.id AS id, {RUN}.{summary_column} AS score FROM {RUN} WHERE {condition}
), scored AS (
    SELECT id, score FROM matched WHERE {scored}
), scored_count AS (
    SELECT COUNT(*) AS runs FROM scored
), shown AS (
    SELECT id, score FROM scored
    WHERE {hashed} <= (SELECT 4294967296.0 * 1.25 * {int(limit)} / NULLIF(runs, 0) + 65536 FROM scored_count)
    ORDER BY {hashed}, id LIMIT {int(limit)}
), key_stats AS (
    SELECT a.key AS key, COUNT(*) AS runs, COUNT(*) - COUNT(a.num) AS non_numbers,
           MIN(COALESCE(a.value, '')) AS low, MAX(COALESCE(a.value, '')) AS high
    FROM {ARG} AS a {matched_args}
    GROUP BY a.key
)
SELECT 0 AS part, (SELECT COUNT(*) FROM matched) AS a, (SELECT runs FROM scored_count) AS b,
       {text} AS key, {text} AS t1, {text} AS t2, {number} AS x
UNION ALL
SELECT 1, runs, non_numbers, key, low, high, {number} FROM key_stats
UNION ALL
SELECT 2, shown.id, {whole}, r.identifier, r.path, {text}, shown.score
FROM shown JOIN {RUN} AS r ON r.id = shown.id
UNION ALL
SELECT 3, a.run_id, a.position, a.key, a.value, {text}, a.num
FROM shown JOIN {ARG} AS a ON a.run_id = shown.id
ORDER BY 1, 2, 3
"""


def hparam_rows(source: HparamSource, where: Filter, summary: str, limit: int) -> HparamRows:
    """Return the exec args and the score ``summary`` of the runs (below ``source.folder``)
    matching ``where``: every key's statistics over them, and the arguments of at most
    ``limit`` runs with a score, from one SQL statement (see the module's description).

    Raises:
        QueryError: ``summary`` is no score summary, or ``limit`` is below 1.
    """
    if summary not in SUMMARY_COLUMNS:
        raise QueryError(
            f"unknown score summary {summary!r}; expected one of {', '.join(SUMMARY_COLUMNS)}"
        )
    if limit < 1:
        raise QueryError(f"the number of runs shown must be at least 1, got {limit}")
    folder = source.folder
    if folder is not None:
        where = under(relative(source.root, Path(folder)), True) & where
    params = Params()
    sql = _statement(where, SUMMARY_COLUMNS[summary], limit, params)
    return _collect(summary, source.reader.rows(sql, params.values))


def _collect(summary: str, rows: Iterable[tuple[Any, ...]]) -> HparamRows:
    answer = HparamRows(summary)
    for part, first, second, key, text1, text2, number in rows:
        if part == 0:
            answer.matched, answer.scored = int(first), int(second)
        elif part == 1:
            answer.keys.append(KeyStats(key, int(first), int(second), text1, text2))
        elif part == 2:
            answer.run_ids.append(int(first))
            answer.identifiers.append(disk_name(key))
            answer.paths.append(disk_name(text1))
            answer.scores.append(float(number))
        else:
            answer.args.setdefault(int(first), {}).setdefault(
                key, (text1, None if number is None else float(number))
            )
    answer.keys.sort(key=lambda stats: stats.key)
    return answer
