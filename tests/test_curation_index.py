"""A run's tags and notes in the index: the tables, views and revision 0005, and the
``tag``/``note`` filters answering the same in SQL as in memory.

The index here is built by the schema code (SQLite head, or the migrations on
PostgreSQL) and filled by hand with rows of ``hermes_run``, ``hermes_arg``,
``hermes_tag`` and ``hermes_note``; the runs in memory are plain objects with the
same values (syncing the files into the index is tested elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, event, insert, inspect, select, text

from pyhermes import rundir
from pyhermes.index.query.filters import Filter, Params
from pyhermes.index.query.grammar import parse_filter
from pyhermes.index.store import schema
from pyhermes.index.store.models import arg_table, note_table, run_table, tag_table
from pyhermes.rundir import Note

#: name: (exec args, tags, notes)
RUNS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "r1": (["--doubledqn", "-lr 0.001"], ["best", "paper"], ["Diverged after 2M steps"]),
    "r2": (["-lr 0.01"], ["paper"], []),
    "r3": (["--doubledqn"], [], ["fine", "LR 100%_done / ok"]),
    "r4": ([], ["Paper", "best run"], ["ÉCHEC total", "échec"]),
    "r5": ([], [], []),
    "r6": (["-lr 0.5"], ["été"], ["multi\nline DIVERGED"]),
}


class FakeRun:
    """What a filter reads of a run in memory (the Experiment protocol of filters.py)."""

    def __init__(self, run_id: int, name: str, args: list[str], tags: list[str], notes: list[str]) -> None:
        self._run_id = run_id
        self.identifier = name
        self.path_to_experiment = Path("experiments/s/e") / name
        self.exec_arg_lines = args
        self.exec_args = set(args)
        self.info_dict: dict[str, str] = {}
        self.is_finished = True
        self.score_summary = None
        self.tags = sorted(tags)
        self.notes = [Note(datetime(2024, 3, 1, 10, n), body) for n, body in enumerate(notes)]


FAKES = [FakeRun(i, name, *values) for i, (name, values) in enumerate(RUNS.items(), start=1)]


def _fill(engine: Engine) -> None:
    with engine.begin() as conn:
        for run in FAKES:
            conn.execute(insert(run_table).values(
                id=run._run_id, path=f"experiments/s/e/{run.identifier}", parent="experiments/s/e",
                identifier=run.identifier, finished=True, read_at=0.0, settled=True))
            for position, line in enumerate(run.exec_arg_lines):
                key, values = rundir.split_arg(line)
                conn.execute(insert(arg_table).values(
                    run_id=run._run_id, position=position, raw=line, key=key,
                    value=" ".join(values) or None, num=rundir.numeric_value(values)))
            for name in run.tags:
                conn.execute(insert(tag_table).values(run_id=run._run_id, tag=name))
            for position, entry in enumerate(run.notes):
                conn.execute(insert(note_table).values(
                    run_id=run._run_id, position=position, time=entry.time, text=entry.text))


def _foreign_keys_on(engine: Engine) -> Engine:
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=ON")
    return engine


@pytest.fixture
def sqlite_index(tmp_path: Path) -> Iterator[Engine]:
    """A new SQLite index at head (created as pyhermes creates one), filled with :data:`RUNS`."""
    engine = _foreign_keys_on(create_engine(f"sqlite:///{tmp_path / 'index.sqlite'}"))
    schema.ensure_schema(engine, tmp_path / "index.sqlite.lock")
    _fill(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_index(pg_url: str) -> Iterator[Engine]:
    """A new PostgreSQL index migrated to head, filled with :data:`RUNS`."""
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    schema.upgrade_with_alembic(engine)
    _fill(engine)
    yield engine
    engine.dispose()


def _in_sql(engine: Engine, condition: Filter, correlated: bool) -> list[str]:
    params = Params(correlated=correlated)
    where = condition.sql(params)
    statement = f"SELECT identifier FROM hermes_run WHERE {where} ORDER BY id"
    with engine.connect() as conn:
        return list(conn.execute(text(statement), params.values).scalars())


def _in_memory(condition: Filter) -> list[str]:
    return [run.identifier for run in FAKES if condition.matches(run)]


#: Expressions and the runs they select (the same in SQL and in memory).
EXPECTED: list[tuple[str, list[str]]] = [
    ("tag = paper", ["r1", "r2"]),
    ("tag = Paper", ["r4"]),
    ("tag != paper", ["r3", "r4", "r5", "r6"]),
    ("not tag = paper", ["r3", "r4", "r5", "r6"]),
    ("tag in (paper, best)", ["r1", "r2"]),
    ('tag in (nothing, "best run")', ["r4"]),
    ('tag = "best run"', ["r4"]),
    ("tag = été", ["r6"]),
    ("tag = missing", []),
    ("note ~ diverged", ["r1", "r6"]),
    ('note ~ "DIVERGED AFTER"', ["r1"]),
    ('note ~ "line diverged"', ["r6"]),
    ('note ~ "100%_"', ["r3"]),
    ('note ~ "%"', ["r3"]),
    ('note ~ "_"', ["r3"]),
    ('note ~ "/ ok"', ["r3"]),
    ('note ~ "0%d"', []),
    ('note ~ "a_"', []),
    ('note ~ ""', ["r1", "r3", "r4", "r6"]),
    ("not note ~ steps", ["r2", "r3", "r4", "r5", "r6"]),
    ("--doubledqn and tag = paper", ["r1"]),
    ("-lr < 0.05 and tag != paper", []),
    ("-lr > 0.005 and not tag = paper", ["r6"]),
    ("tag = paper or note ~ fine", ["r1", "r2", "r3"]),
    ("not (tag in (paper, best) and note ~ diverged)", ["r2", "r3", "r4", "r5", "r6"]),
    ("tag = paper and tag = best", ["r1"]),
]

#: Letters other than A-Z: SQLite and memory match their case exactly.
NON_ASCII: list[tuple[str, list[str]]] = [
    ('note ~ "échec"', ["r4"]),
    ('note ~ "ÉCHEC"', ["r4"]),
    ('note ~ "Échec TOTAL"', ["r4"]),
    ('note ~ "échec total"', []),
]


@pytest.mark.parametrize("correlated", [False, True])
@pytest.mark.parametrize(("expression", "selected"), EXPECTED + NON_ASCII)
def test_sqlite_and_memory_agree(
    sqlite_index: Engine, expression: str, selected: list[str], correlated: bool
) -> None:
    condition = parse_filter(expression)
    assert _in_memory(condition) == selected
    assert _in_sql(sqlite_index, condition, correlated) == selected


def test_postgresql_and_memory_agree(pg_index: Engine) -> None:
    for correlated in (False, True):
        for expression, selected in EXPECTED:
            condition = parse_filter(expression)
            assert _in_sql(pg_index, condition, correlated) == selected, expression
    # PostgreSQL's lower() folds every letter: there a search ignores the case of É too.
    assert _in_sql(pg_index, parse_filter('note ~ "ÉCHEC"'), False) == ["r4"]
    assert _in_sql(pg_index, parse_filter('note ~ "échec total"'), False) == ["r4"]


def test_clause_selects_with_sqlalchemy(sqlite_index: Engine) -> None:
    statement = select(run_table.c.identifier).where(parse_filter("tag = paper and note ~ m").clause())
    with sqlite_index.connect() as conn:
        assert list(conn.execute(statement.order_by(run_table.c.id)).scalars()) == ["r1"]


# --------------------------------------------------------------------------- schema


def test_views_and_cascade(sqlite_index: Engine) -> None:
    with sqlite_index.connect() as conn:
        assert tuple(conn.execute(text("SELECT * FROM run_tags")).keys()) == ("run_id", "tag")
        assert tuple(conn.execute(text("SELECT * FROM run_notes")).keys()) == ("run_id", "time", "text")
        tags = conn.execute(text("SELECT run_id, tag FROM run_tags WHERE run_id = 1 ORDER BY tag")).all()
        assert [tuple(row) for row in tags] == [(1, "best"), (1, "paper")]
        notes = conn.execute(text("SELECT time, text FROM run_notes WHERE run_id = 6")).all()
        assert [tuple(row) for row in notes] == [("2024-03-01 10:00:00.000000", "multi\nline DIVERGED")]
        conn.execute(text("DELETE FROM hermes_run WHERE id IN (1, 6)"))
        assert conn.execute(text("SELECT count(*) FROM hermes_tag WHERE run_id IN (1, 6)")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM hermes_note WHERE run_id IN (1, 6)")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM hermes_tag")).scalar() == 3  # r2 and r4
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(sqlite_index).get_indexes("hermes_tag")}
    assert indexes == {"ix_hermes_tag_tag_run": ["tag", "run_id"]}


def _move(engine: Engine, how: Any, revision: str) -> None:
    with engine.connect() as conn:
        how(schema.alembic_config(conn), revision)
        conn.commit()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_0005_down_and_up_keeps_the_runs(
    request: pytest.FixtureRequest, tmp_path: Path, backend_name: str
) -> None:
    if backend_name == "sqlite":
        engine = _foreign_keys_on(create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}"))
    else:
        url = request.getfixturevalue("pg_url")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        schema.upgrade_with_alembic(engine)
        _fill(engine)
        _move(engine, command.downgrade, "0004")
        names = set(inspect(engine).get_table_names())
        assert {"hermes_tag", "hermes_note"}.isdisjoint(names)
        assert {"run_tags", "run_notes"}.isdisjoint(inspect(engine).get_view_names())
        assert schema.stored_generation(engine) == 4
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == len(RUNS)
            assert conn.execute(text("SELECT count(*) FROM run_args")).scalar() == 5
        _move(engine, command.upgrade, "head")
        assert schema.current_revision(engine) == schema.HEAD_REVISION == "0005"
        assert schema.stored_generation(engine) == 5
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM run_tags")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == len(RUNS)
    finally:
        engine.dispose()
