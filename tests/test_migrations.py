"""Tests of the Alembic migrations shipped as pyhermes.migrations (the migrations/ folder).

They keep the migrations, the models and pyhermes.index.store.schema in step, check
the stable views, the downgrade, the developers' command line, and that a
non-editable wheel carries working migrations.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text

from pyhermes.index.store import schema
from pyhermes.index.store.models import SUMMARY_COLUMNS, Base

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """Return an engine on an empty SQLite file (foreign keys on, as the index has them)."""
    eng = create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")

    @event.listens_for(eng, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    yield eng
    eng.dispose()


def _upgrade(engine: Engine) -> None:
    schema.upgrade_with_alembic(engine)


def _not_a_view(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    return not (type_ == "table" and name in schema.VIEW_COLUMNS)


# --------------------------------------------------------------------------- revisions


def test_one_head_and_it_is_head_revision() -> None:
    assert schema.migration_script_heads() == [schema.HEAD_REVISION]


def test_known_revisions_match_the_scripts() -> None:
    assert tuple(schema.migration_script_revisions()) == schema.KNOWN_REVISIONS
    assert schema.KNOWN_REVISIONS[-1] == schema.HEAD_REVISION


def test_generations_increase_by_one_and_end_at_head_generation() -> None:
    scripts = ScriptDirectory.from_config(schema.alembic_config())
    generations = [scripts.get_revision(rev).module.GENERATION for rev in schema.KNOWN_REVISIONS]
    assert generations == list(range(1, len(generations) + 1))
    assert generations[-1] == schema.HEAD_GENERATION


def test_revision_files_import_nothing_from_pyhermes() -> None:
    # Migrations are frozen in time: they must not follow later edits of the package.
    imports = re.compile(r"^\s*(from|import)\s+pyhermes\b", re.MULTILINE)
    for file in (REPO / "migrations" / "versions").glob("*.py"):
        assert not imports.search(file.read_text()), file


# --------------------------------------------------------------------------- upgrade


def test_upgrade_matches_the_models(engine: Engine) -> None:
    _upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _not_a_view}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_names_follow_the_naming_convention(engine: Engine) -> None:
    _upgrade(engine)
    insp = inspect(engine)
    for table in Base.metadata.sorted_tables:
        assert {i["name"] for i in insp.get_indexes(table.name)} == {i.name for i in table.indexes}
        assert insp.get_pk_constraint(table.name)["name"] == f"pk_{table.name}"
        assert {fk["name"] for fk in insp.get_foreign_keys(table.name)} == {
            fk.name for fk in table.foreign_key_constraints
        }
    assert [u["name"] for u in insp.get_unique_constraints("hermes_run")] == ["uq_hermes_run_path"]


def test_upgrade_records_the_generation(engine: Engine) -> None:
    _upgrade(engine)
    assert schema.current_revision(engine) == schema.HEAD_REVISION
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, value FROM hermes_meta")).all()
    assert [tuple(r) for r in rows] == [("schema_generation", str(schema.HEAD_GENERATION))]


def test_views_have_the_documented_columns(engine: Engine) -> None:
    _upgrade(engine)
    assert set(inspect(engine).get_view_names()) == set(schema.VIEW_COLUMNS)
    summary = {column: i + 1.5 for i, column in enumerate(SUMMARY_COLUMNS.values())}
    summary["score_count"] = 4
    summary["score_argmax"] = 2
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO hermes_run (id, path, parent, identifier, script_name, finished, "
                "read_at, settled, start_time, "
                + ", ".join(summary)
                + ") VALUES (7, 'exp/r7', 'exp', 'r7', 'train.py', 1, 0, 1, '2024-01-02 03:04:05', "
                + ", ".join(f":{c}" for c in summary)
                + ")"
            ),
            summary,
        )
        conn.execute(text("INSERT INTO hermes_arg VALUES (7, 0, '--lr=0.1', '--lr', '0.1', 0.1)"))
        conn.execute(text("INSERT INTO hermes_arg VALUES (7, 1, '--fast', '--fast', NULL, NULL)"))
        conn.execute(text("INSERT INTO hermes_info VALUES (7, 'host', 'gpu1')"))
    with engine.connect() as conn:
        for view, columns in schema.VIEW_COLUMNS.items():
            assert tuple(conn.execute(text(f"SELECT * FROM {view}")).keys()) == columns
        run = conn.execute(text("SELECT * FROM runs")).mappings().one()
        assert (run["id"], run["path"], run["identifier"], run["script_name"]) == (
            7,
            "exp/r7",
            "r7",
            "train.py",
        )
        for name, column in SUMMARY_COLUMNS.items():
            assert run[name] == summary[column], name
        args = conn.execute(text('SELECT * FROM run_args ORDER BY "position"')).all()
        assert [tuple(a) for a in args] == [
            (7, 0, "--lr", "0.1", 0.1, "--lr=0.1"),
            (7, 1, "--fast", None, None, "--fast"),
        ]
        info = conn.execute(text("SELECT * FROM run_info")).all()
        assert [tuple(i) for i in info] == [(7, "host", "gpu1")]
        # The foreign keys cascade.
        conn.execute(text("DELETE FROM hermes_run"))
        assert conn.execute(text("SELECT count(*) FROM run_args")).scalar() == 0


def test_downgrade_to_base_removes_everything(engine: Engine) -> None:
    _upgrade(engine)
    schema.downgrade_to_base(engine)
    insp = inspect(engine)
    assert insp.get_table_names() == ["alembic_version"]
    assert insp.get_view_names() == []
    assert schema.current_revision(engine) is None
    # And up again.
    _upgrade(engine)
    assert schema.current_revision(engine) == schema.HEAD_REVISION


def test_ensure_schema_from_empty_and_at_head(engine: Engine, tmp_path: Path) -> None:
    schema.ensure_schema(engine, tmp_path / "m.sqlite.lock")
    assert schema.current_revision(engine) == schema.HEAD_REVISION
    schema.ensure_schema(engine, tmp_path / "m.sqlite.lock")
    assert schema.current_revision(engine) == schema.HEAD_REVISION


def test_a_new_sqlite_index_is_created_as_the_migrations_build_it(
    engine: Engine, tmp_path: Path
) -> None:
    """pyhermes.index.store.sqlite_head holds what `alembic upgrade head` builds, and ensure_schema
    creates a new SQLite index from it (if this fails: python scripts/sqlite_head.py)."""
    from pyhermes.index.store import sqlite_head

    _upgrade(engine)
    built = schema.sqlite_schema_statements(engine)
    assert sqlite_head.REVISION == schema.HEAD_REVISION
    assert list(sqlite_head.STATEMENTS) == built, "stale: run python scripts/sqlite_head.py"
    new = create_engine(f"sqlite:///{tmp_path / 'new.sqlite'}")
    try:
        schema.ensure_schema(new, tmp_path / "new.sqlite.lock")
        assert schema.sqlite_schema_statements(new) == built
        assert schema.current_revision(new) == schema.HEAD_REVISION
        assert schema.stored_generation(new) == schema.HEAD_GENERATION
        with new.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": _not_a_view}
            )
            assert compare_metadata(context, Base.metadata) == []
        # An index emptied to base (an alembic_version table left) migrates with Alembic.
        schema.downgrade_to_base(new)
        schema.ensure_schema(new, tmp_path / "new.sqlite.lock")
        assert schema.sqlite_schema_statements(new) == built
    finally:
        new.dispose()


def test_creating_a_new_sqlite_index_does_not_import_alembic(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from pyhermes.index.store.engine import open_engine, resolve_index
        from pyhermes.index.store.schema import HEAD_REVISION, current_revision
        engine = open_engine(resolve_index(Path({str(tmp_path)!r})))
        assert current_revision(engine) == HEAD_REVISION
        print(sorted(name for name in sys.modules if name.split(".")[0] == "alembic"))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "HERMES_INDEX"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / ".hermes" / "index.sqlite").is_file()


def test_offline_sql_renders(tmp_path: Path) -> None:
    from alembic import command

    cfg = schema.alembic_config()
    cfg.set_main_option("sqlalchemy.url", "postgresql://")
    out = tmp_path / "upgrade.sql"
    with out.open("w") as handle:
        cfg.output_buffer = handle
        command.upgrade(cfg, "head", sql=True)
    sql = out.read_text()
    assert "CREATE TABLE hermes_run" in sql and "CREATE VIEW runs" in sql


# --------------------------------------------------------------------------- command line


def test_alembic_command_line_with_the_repository_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    check = create_engine(url)

    def alembic(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "-x", f"url={url}"]
            + list(args),
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    try:
        alembic("upgrade", "head")
        assert schema.current_revision(check) == schema.HEAD_REVISION
        alembic("downgrade", "base")
        assert schema.current_revision(check) is None
    finally:
        check.dispose()


# --------------------------------------------------------------------------- wheel


def _dependency_paths() -> list[str]:
    """Return the folders holding sqlalchemy, alembic and their dependencies (not pyhermes)."""
    import alembic
    import mako
    import numpy
    import sqlalchemy
    import typing_extensions

    folders = {
        str(Path(m.__file__).resolve().parent.parent) for m in (alembic, mako, numpy, sqlalchemy)
    }
    folders.add(str(Path(typing_extensions.__file__).resolve().parent))
    return sorted(folders)


def test_non_editable_wheel_migrates(tmp_path: Path) -> None:
    """Build a wheel from a copy of the sources, install it alone in a new venv, migrate."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyhermes", "migrations"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    dist = tmp_path / "dist"
    # No isolation: build with this environment's setuptools (offline, fast).
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(dist), str(src)],
        capture_output=True, text=True, cwd=src, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("pyhermes-*.whl")

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import pyhermes, pyhermes.migrations
        venv = Path({str(venv)!r}).resolve()
        for module in (pyhermes, pyhermes.migrations):
            assert venv in Path(module.__file__).resolve().parents, module.__file__
        package = Path(pyhermes.migrations.__file__).parent
        assert (package / "script.py.mako").is_file() and (package / "README").is_file()
        from pyhermes.index.store.engine import open_engine, resolve_index
        from pyhermes.index.store.schema import (
            HEAD_REVISION, current_revision, migration_script_heads,
        )
        engine = open_engine(resolve_index(Path({str(tmp_path / "runs")!r})))
        assert current_revision(engine) == HEAD_REVISION, current_revision(engine)
        # A new index is created without migrations: run them from the wheel too.
        from pyhermes.index.store.schema import downgrade_to_base, upgrade_with_alembic
        downgrade_to_base(engine)
        assert current_revision(engine) is None
        upgrade_with_alembic(engine)
        assert current_revision(engine) == HEAD_REVISION, current_revision(engine)
        assert migration_script_heads() == [HEAD_REVISION]
        print("migrated", HEAD_REVISION)
        """
    )
    (tmp_path / "runs").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HERMES_INDEX")}
    # The dependencies come from this environment; pyhermes must come from the wheel.
    env["PYTHONPATH"] = os.pathsep.join(_dependency_paths())
    assert str(REPO) not in env["PYTHONPATH"].split(os.pathsep)
    done = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, cwd=work, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"migrated {schema.HEAD_REVISION}"
    assert (tmp_path / "runs" / ".hermes" / "index.sqlite").is_file()


def _runs_at(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT path, identifier, count FROM runs"))]


def test_0002_adds_run_warnings_and_keeps_the_runs(engine: Engine, tmp_path: Path) -> None:
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(schema.alembic_config(conn), "0001")
        conn.commit()
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO hermes_run (id, path, parent, identifier, finished, read_at, settled, "
            "score_count) VALUES (1, 'e/r1', 'e', 'r1', 1, 0, 1, 3)"))
        conn.execute(text("INSERT INTO hermes_info VALUES (1, 'host', 'gpu')"))
    assert "warnings" not in {c["name"] for c in inspect(engine).get_columns("hermes_run")}

    schema.ensure_schema(engine, tmp_path / "m.sqlite.lock")  # what opening an old index does
    assert schema.current_revision(engine) == schema.HEAD_REVISION
    assert schema.stored_generation(engine) == schema.HEAD_GENERATION
    assert _runs_at(engine) == [("e/r1", "r1", 3)]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT warnings FROM hermes_run")).scalar() is None
        assert conn.execute(text("SELECT value FROM run_info")).scalar() == "gpu"

    with engine.connect() as conn:
        command.downgrade(schema.alembic_config(conn), "0001")
        conn.commit()
    assert "warnings" not in {c["name"] for c in inspect(engine).get_columns("hermes_run")}
    assert schema.stored_generation(engine) == 1
    assert _runs_at(engine) == [("e/r1", "r1", 3)]  # the view is back, the run kept
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM run_info")).scalar() == "gpu"
    with engine.connect() as conn:  # and up again: the schema matches the models
        command.upgrade(schema.alembic_config(conn), "head")
        conn.commit()
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": _not_a_view}), Base.metadata
        )
    assert diff == []


def test_0002_down_and_up_on_postgresql(pg_url: str) -> None:
    from alembic import command

    pg = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        _upgrade(pg)
        with pg.begin() as conn:
            conn.execute(text(
                "INSERT INTO hermes_run (id, path, parent, identifier, finished, read_at, "
                "settled, warnings) VALUES (1, 'e/r1', 'e', 'r1', true, 0, true, 'a note')"))
            conn.execute(text("INSERT INTO hermes_info VALUES (1, 'host', 'gpu')"))
        with pg.connect() as conn:
            command.downgrade(schema.alembic_config(conn), "0001")
            conn.commit()
        assert "warnings" not in {c["name"] for c in inspect(pg).get_columns("hermes_run")}
        with pg.connect() as conn:
            assert conn.execute(text("SELECT identifier FROM runs")).scalar() == "r1"
            assert conn.execute(text("SELECT value FROM run_info")).scalar() == "gpu"
        _upgrade(pg)
        assert schema.current_revision(pg) == schema.HEAD_REVISION
    finally:
        pg.dispose()


#: Revisions that only replace indexes: (the revision before, table, its indexes there,
#: the indexes the revision puts in their place).
_INDEX_REVISIONS = {
    "0003": (
        "0002",
        "hermes_arg",
        {"ix_hermes_arg_key_num": ["key", "num"]},
        {
            "ix_hermes_arg_key_num_value_run": ["key", "num", "value", "run_id"],
            "ix_hermes_arg_run_key_num_value": ["run_id", "key", "num", "value"],
        },
    ),
    "0004": (
        "0003",
        "hermes_run",
        {"ix_hermes_run_parent": ["parent"]},
        {"ix_hermes_run_parent_path": ["parent", "path"]},
    ),
}


def _indexes(engine: Engine, table: str) -> dict[str, list[str]]:
    return {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes(table)}


def _check_index_revision(engine: Engine, revision: str) -> None:
    """From the revision before with a run and its args: up to ``revision``, down, up to
    head; the indexes replaced each way, the generation written, the rows kept."""
    from alembic import command

    before, table, old, new = _INDEX_REVISIONS[revision]

    def move(to: str, how: Any) -> None:
        with engine.connect() as conn:
            how(schema.alembic_config(conn), to)
            conn.commit()

    def holds(wanted: dict[str, list[str]], gone: dict[str, list[str]], generation: int) -> None:
        indexes = _indexes(engine, table)
        assert {name: indexes.get(name) for name in wanted} == wanted
        assert not set(gone) & set(indexes)
        assert schema.stored_generation(engine) == generation
        with engine.connect() as conn:
            assert conn.execute(text("SELECT identifier FROM runs")).scalar() == "r1"
            assert conn.execute(text("SELECT key, num FROM run_args")).one() == ("-lr", 0.01)

    move(before, command.upgrade)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO hermes_run (id, path, parent, identifier, finished, read_at, settled) "
            "VALUES (1, 'e/r1', 'e', 'r1', true, 0, true)"))
        conn.execute(text(
            "INSERT INTO hermes_arg VALUES (1, 0, '-lr 0.01', '-lr', '0.01', 0.01)"))
    holds(old, new, int(before))
    move(revision, command.upgrade)
    holds(new, old, int(revision))
    move(before, command.downgrade)
    holds(old, new, int(before))
    _upgrade(engine)
    holds({}, {}, schema.HEAD_GENERATION)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": _not_a_view}), Base.metadata
        )
    assert diff == []


@pytest.mark.parametrize("revision", sorted(_INDEX_REVISIONS))
def test_index_revisions_replace_their_indexes_on_sqlite(engine: Engine, revision: str) -> None:
    _check_index_revision(engine, revision)


@pytest.mark.parametrize("revision", sorted(_INDEX_REVISIONS))
def test_index_revisions_replace_their_indexes_on_postgresql(pg_url: str, revision: str) -> None:
    pg = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        _check_index_revision(pg, revision)
    finally:
        pg.dispose()
