"""Free SQL under limits: a time limit stops a statement, a row limit fetches only the first
rows, on SQLite and on PostgreSQL (the ``backend`` fixture); through the library
(``Catalog.sql``), ``hermes sql`` and the SQL page and ``/api/sql`` of ``hermes serve``."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from pyhermes import Catalog, QueryError
from pyhermes.cli.main import hermes_main

#: A recursive WITH without end: one more row for ever.
ENDLESS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n"
#: The same, with an aggregate over every row: no first row before the end that never comes.
ENDLESS_TOTAL = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT MAX(i) FROM n"


@pytest.fixture
def index(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.node.pg_index if backend == "postgresql" else str(tmp_path / "index.sqlite")


@pytest.fixture
def catalog(read_only_corpus: Path, index: str):
    from pyhermes.index.store.engine import dispose_engines

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        catalog = Catalog.open(read_only_corpus, index=index)
    yield catalog
    dispose_engines()


def test_the_row_limit_fetches_the_first_rows_and_says_there_are_more(catalog):
    every = catalog.sql("SELECT identifier FROM runs ORDER BY identifier")
    assert not every.truncated and len(every.rows) > 10
    first = catalog.sql("SELECT identifier FROM runs ORDER BY identifier", limit=10)
    assert first.rows == every.rows[:10] and first.truncated
    exact = catalog.sql("SELECT identifier FROM runs ORDER BY identifier", limit=len(every.rows))
    assert exact.rows == every.rows and not exact.truncated
    assert catalog.sql("EXPLAIN SELECT 1", limit=1000).rows  # not a cursor on PostgreSQL


def test_a_recursive_with_without_end_is_stopped(catalog):
    # By the row limit: the first rows are all that is read.
    endless = catalog.sql(ENDLESS, limit=100, timeout=30)
    assert [row[0] for row in endless.rows] == list(range(1, 101)) and endless.truncated
    # By the time limit, when no row comes before the end.
    started = time.monotonic()
    with pytest.raises(QueryError, match="time limit"):
        catalog.sql(ENDLESS_TOTAL, limit=100, timeout=0.5)
    assert time.monotonic() - started < 20
    # The connection is usable afterwards, with and without limits.
    assert catalog.sql("SELECT COUNT(*) FROM runs", timeout=5).rows[0][0] > 0
    assert catalog.sql("SELECT 1 AS one").rows == [(1,)]


def test_hermes_sql_has_a_timeout_and_a_row_limit(read_only_corpus, index, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = hermes_main(["sql", str(read_only_corpus), ENDLESS, "--max-rows", "3", "--format", "csv",
                            "--index", index])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.split() == ["i", "1", "2", "3"]
    assert "the first 3 rows" in captured.err
    code = hermes_main(["sql", str(read_only_corpus), ENDLESS_TOTAL, "--timeout", "0.5", "--index", index])
    assert code == 1 and "time limit" in capsys.readouterr().err
