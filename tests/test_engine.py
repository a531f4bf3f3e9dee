"""Tests of pyhermes.index.store.engine: where the index lives, opening, migrating, recovering.

Every database here is real: SQLite files in tmp_path and, when the server
binaries are installed, a throwaway PostgreSQL server (``pg_url`` of tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from pyhermes.errors import CatalogError, IndexVersionError
from pyhermes.index.store import engine as engine_mod
from pyhermes.index.store import location as location_mod
from pyhermes.index.store.engine import (
    BrokenIndexWarning,
    IndexLocation,
    dispose_engines,
    index_root,
    open_engine,
    rebuild_index,
    resolve_index,
)
from pyhermes.index.store.schema import (
    HEAD_GENERATION,
    HEAD_REVISION,
    VIEW_COLUMNS,
    current_revision,
    downgrade_to_base,
    stored_generation,
)

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No HERMES_INDEX from outside, a per-user cache inside tmp_path, no cached engines."""
    monkeypatch.delenv("HERMES_INDEX", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    dispose_engines()
    yield
    dispose_engines()


def _subprocess_env() -> dict[str, str]:
    """Return the environment for child Pythons: no HERMES_INDEX."""
    env = dict(os.environ)
    env.pop("HERMES_INDEX", None)
    return env


def _sqlite_location(file: Path) -> IndexLocation:
    return resolve_index(file.parent, index=file)


def _make_index(file: Path) -> None:
    """Create an index at head in ``file`` and close every connection to it."""
    open_engine(_sqlite_location(file))
    dispose_engines()


def _raw(file: Path) -> sqlite3.Connection:
    """Return a plain sqlite3 connection to ``file`` (no pragmas, no SQLAlchemy)."""
    return sqlite3.connect(file)


def _broken_files(folder: Path, name: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"{name}.broken-"))


def _cache_file(tmp_path: Path, root: Path) -> Path:
    key = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:16]
    return tmp_path / "xdg-cache" / "pyhermes" / f"{key}.sqlite"


# --------------------------------------------------------------------------- resolve_index


def test_argument_file_path(tmp_path: Path) -> None:
    loc = resolve_index(tmp_path, index=tmp_path / "elsewhere" / "my.sqlite")
    assert loc.file == tmp_path / "elsewhere" / "my.sqlite"
    assert loc.url == f"sqlite:///{tmp_path}/elsewhere/my.sqlite"
    assert loc.root is None  # the caller decides; index_root keeps it in hermes_meta


def test_argument_file_in_a_hermes_folder_has_its_root(tmp_path: Path) -> None:
    loc = resolve_index(tmp_path / "a", index=str(tmp_path / "x" / ".hermes" / "index.sqlite"))
    assert loc.root == tmp_path / "x"


def test_argument_url(tmp_path: Path) -> None:
    loc = resolve_index(tmp_path, index="postgresql://me:secret@db.example/hermes")
    assert loc.url == "postgresql+psycopg://me:secret@db.example/hermes"
    assert loc.file is None and loc.root is None
    loc = resolve_index(tmp_path, index=f"sqlite:///{tmp_path}/u.sqlite")
    assert loc.file == tmp_path / "u.sqlite" and loc.root is None
    loc = resolve_index(tmp_path, index="sqlite://")
    assert loc.file is None


def test_invalid_url_is_a_catalog_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not a valid SQLAlchemy database URL"):
        resolve_index(tmp_path, index="no such scheme://x")


def test_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERMES_INDEX", str(tmp_path / "env.sqlite"))
    assert resolve_index(tmp_path / "runs").file == tmp_path / "env.sqlite"
    # The argument wins over the environment.
    assert resolve_index(tmp_path, index=tmp_path / "arg.sqlite").file == tmp_path / "arg.sqlite"
    monkeypatch.setenv("HERMES_INDEX", "postgresql://h/db")
    assert resolve_index(tmp_path).url == "postgresql+psycopg://h/db"


def test_nearest_ancestor_index(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    inner = outer / "a" / "b"
    deep = inner / "c" / "d"
    deep.mkdir(parents=True)
    for root in (outer, inner):
        (root / ".hermes").mkdir()
        (root / ".hermes" / "index.sqlite").touch()
    loc = resolve_index(deep)
    assert loc.file == inner / ".hermes" / "index.sqlite"
    assert loc.root == inner
    assert resolve_index(outer / "a").root == outer
    assert resolve_index(inner).root == inner


def test_creates_the_hermes_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    loc = resolve_index(runs)
    assert loc == IndexLocation(
        url=f"sqlite:///{runs}/.hermes/index.sqlite",
        file=runs / ".hermes" / "index.sqlite",
        root=runs,
    )
    assert (runs / ".hermes").is_dir() and not loc.file.exists()
    engine = open_engine(loc)
    assert loc.file.is_file()
    assert current_revision(engine) == HEAD_REVISION


def test_unwritable_folder_falls_back_to_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "readonly-runs"
    runs.mkdir()
    real = location_mod._is_writable
    monkeypatch.setattr(location_mod, "_is_writable", lambda f: f != runs and real(f))
    loc = resolve_index(runs)
    assert loc.file == _cache_file(tmp_path, runs)
    assert loc.root == runs
    assert not (runs / ".hermes").exists()
    assert current_revision(open_engine(loc)) == HEAD_REVISION


def test_read_only_existing_index_falls_back_to_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    (shared / ".hermes").mkdir(parents=True)
    _make_index(shared / ".hermes" / "index.sqlite")
    real = location_mod._is_writable
    monkeypatch.setattr(location_mod, "_is_writable", lambda f: f != shared / ".hermes" and real(f))
    loc = resolve_index(shared / "sub")
    # The cache stands for the tree of the shared index, whichever subfolder is opened.
    assert loc.root == shared
    assert loc.file == _cache_file(tmp_path, shared)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root writes into a chmod 0o555 folder anyway; the monkeypatched test covers it",
)
def test_chmod_read_only_folder_falls_back_to_the_user_cache(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o555)
    try:
        loc = resolve_index(runs)
        assert loc.file == _cache_file(tmp_path, runs)
    finally:
        runs.chmod(0o755)


def test_unwritable_cache_is_a_catalog_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(location_mod, "_is_writable", lambda f: False)
    with pytest.raises(CatalogError, match="HERMES_INDEX"):
        resolve_index(tmp_path)


def test_default_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert engine_mod.cache_dir() == tmp_path / "home" / ".cache" / "pyhermes"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    assert engine_mod.cache_dir() == tmp_path / "home" / ".cache" / "pyhermes"


# --------------------------------------------------------------------------- open_engine


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = open_engine(_sqlite_location(tmp_path / "i.sqlite"))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_engines_are_cached_per_url(tmp_path: Path) -> None:
    loc = _sqlite_location(tmp_path / "i.sqlite")
    first = open_engine(loc)
    assert open_engine(_sqlite_location(tmp_path / "i.sqlite")) is first
    # A file replaced behind our back gets a new engine (and a schema again).
    dispose_engines()
    first = open_engine(loc)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{loc.file}{suffix}").unlink(missing_ok=True)
    second = open_engine(loc)
    assert second is not first
    assert current_revision(second) == HEAD_REVISION
    dispose_engines()
    assert open_engine(loc) is not second


def test_opening_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    _make_index(runs / ".hermes" / "index.sqlite")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import pyhermes
        assert "sqlalchemy" not in sys.modules, "import pyhermes imported sqlalchemy"
        from pyhermes.index.store.engine import open_engine, resolve_index
        from pyhermes.index.store.schema import current_revision
        location = resolve_index(Path({str(runs / "sub")!r}))
        assert location.file == Path({str(runs / ".hermes" / "index.sqlite")!r}), location
        engine = open_engine(location)
        assert current_revision(engine) == {HEAD_REVISION!r}
        leaked = sorted(m for m in sys.modules if m == "alembic" or m.startswith("alembic."))
        assert not leaked, leaked
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_subprocess_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_empty_file_is_upgraded(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    file.touch()
    engine = open_engine(_sqlite_location(file))
    assert current_revision(engine) == HEAD_REVISION
    assert stored_generation(engine) == HEAD_GENERATION


def test_index_at_base_is_upgraded(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    loc = _sqlite_location(file)
    downgrade_to_base(open_engine(loc))
    dispose_engines()
    with contextlib.closing(_raw(file)) as raw:
        assert raw.execute("SELECT count(*) FROM alembic_version").fetchone() == (0,)
        assert (
            raw.execute("SELECT name FROM sqlite_master WHERE name='hermes_run'").fetchall() == []
        )
    engine = open_engine(loc)
    assert current_revision(engine) == HEAD_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0
    assert _broken_files(tmp_path, "i.sqlite") == []


_OPENER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pyhermes.index.store.engine import open_engine, resolve_index
    from pyhermes.index.store.schema import current_revision
    index, barrier, me, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    (barrier / me).touch()
    deadline = time.time() + 30
    while len(list(barrier.iterdir())) < count and time.time() < deadline:
        time.sleep(0.002)
    engine = open_engine(resolve_index(Path("."), index=index))
    print(current_revision(engine))
    """
)


def _open_concurrently(index: str, tmp_path: Path, count: int = 4) -> None:
    """Open ``index`` from ``count`` processes released at once; assert each reached head."""
    barrier = tmp_path / f"barrier-{uuid.uuid4().hex}"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, index, str(barrier), str(i), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=_subprocess_env(),
        )
        for i in range(count)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == HEAD_REVISION
        assert "Warning" not in err and "Error" not in err, err


def test_concurrent_openers_of_a_fresh_index(tmp_path: Path) -> None:
    file = tmp_path / "runs" / ".hermes" / "index.sqlite"
    _open_concurrently(str(file), tmp_path)
    with contextlib.closing(_raw(file)) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (HEAD_REVISION,)
        ]
        assert raw.execute("SELECT value FROM hermes_meta").fetchall() == [(str(HEAD_GENERATION),)]
    assert _broken_files(file.parent, "index.sqlite") == []


def _set_version(file: Path, revision: str | None, generation: int | None) -> None:
    """Overwrite the stored revision and generation of the index in ``file``."""
    with contextlib.closing(_raw(file)) as raw, raw:
        if revision is None:
            raw.execute("DROP TABLE alembic_version")
        else:
            raw.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        if generation is None:
            raw.execute("DELETE FROM hermes_meta WHERE key = 'schema_generation'")
        else:
            raw.execute(
                "UPDATE hermes_meta SET value = ? WHERE key = 'schema_generation'",
                (str(generation),),
            )


@pytest.mark.parametrize("revision", ["ffff", None])
def test_newer_index_is_an_index_version_error(tmp_path: Path, revision: str | None) -> None:
    file = tmp_path / "i.sqlite"
    _make_index(file)
    _set_version(file, revision, 99)
    with pytest.raises(IndexVersionError) as caught:
        open_engine(_sqlite_location(file))
    message = str(caught.value)
    assert repr(revision) in message
    assert repr(HEAD_REVISION) in message
    assert "pip install -U pyhermes" in message
    assert "hermes-reindex --rebuild" in message
    # Never touched: the newer pyhermes still owns it.
    assert file.exists() and _broken_files(tmp_path, "i.sqlite") == []
    # The fix for those who stay on this version: rebuild.
    engine = rebuild_index(_sqlite_location(file))
    assert current_revision(engine) == HEAD_REVISION
    assert len(_broken_files(tmp_path, "i.sqlite")) == 1


def _dump(file: Path) -> list[str]:
    connection = sqlite3.connect(file)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def _assert_moved_aside_and_fresh(file: Path, original: bytes | list[str]) -> None:
    """``original``: the bytes of a file SQLite cannot read (renamed aside as it is), or the
    dump of a readable one (copied aside through SQLite, so its header counters differ)."""
    with pytest.warns(BrokenIndexWarning) as record:
        engine = open_engine(_sqlite_location(file))
    broken = _broken_files(file.parent, file.name)
    main = [p for p in broken if not p.name.endswith(("-wal", "-shm"))]
    assert len(main) == 1
    if isinstance(original, bytes):
        assert main[0].read_bytes() == original
    else:
        assert _dump(main[0]) == original
    assert main[0].name.startswith(f"{file.name}.broken-2")
    message = str(record[0].message)
    assert str(file) in message and str(main[0]) in message and "rebuilt" in message
    assert current_revision(engine) == HEAD_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hermes_run")).scalar() == 0


@pytest.mark.parametrize(
    ("revision", "generation"), [("abcd", 1), ("abcd", None), ("abcd", 0), (None, 1)]
)
def test_unknown_revision_is_moved_aside(
    tmp_path: Path, revision: str | None, generation: int | None
) -> None:
    file = tmp_path / "i.sqlite"
    _make_index(file)
    _set_version(file, revision, generation)
    _assert_moved_aside_and_fresh(file, _dump(file))


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    file = tmp_path / ".hermes" / "index.sqlite"
    file.parent.mkdir()
    garbage = bytes(range(256)) * 64
    file.write_bytes(garbage)
    Path(f"{file}-wal").write_bytes(b"stale wal")
    # "Not a database" is SQLite's answer: it opens the file to give it, and removes the
    # stale -wal beside a file that is not in WAL mode. The file itself is kept as it was.
    _assert_moved_aside_and_fresh(file, garbage)


def test_operational_errors_do_not_move_the_file(tmp_path: Path) -> None:
    # A folder where the file should be: "unable to open", not corruption.
    folder = tmp_path / "i.sqlite"
    folder.mkdir()
    with pytest.raises(OperationalError):
        open_engine(_sqlite_location(folder))
    assert folder.is_dir() and _broken_files(tmp_path, "i.sqlite") == []


def test_rebuild_index_of_a_sound_index(tmp_path: Path) -> None:
    file = tmp_path / "i.sqlite"
    engine = open_engine(_sqlite_location(file))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hermes_problem VALUES ('x', 'bad', 1.0)"))
    fresh = rebuild_index(_sqlite_location(file))
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hermes_problem")).scalar() == 0
    assert len(_broken_files(tmp_path, "i.sqlite")) == 1


# --------------------------------------------------------------------------- index_root


def test_index_root(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    loc = resolve_index(runs)
    assert index_root(open_engine(loc), loc, tmp_path / "ignored") == runs

    # An explicit index may serve many trees: it stores absolute paths (root "/").
    explicit = resolve_index(runs, index=tmp_path / "explicit.sqlite")
    engine = open_engine(explicit)
    anchor = Path(runs.anchor)
    assert index_root(engine, explicit, runs / "x" / "..") == anchor
    assert index_root(engine, explicit, tmp_path / "other") == anchor
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT value FROM hermes_meta WHERE key = 'root'")).scalar()
    assert stored == str(anchor)


# --------------------------------------------------------------------------- PostgreSQL


def test_postgresql_index(pg_url: str) -> None:
    loc = resolve_index(Path("."), index=pg_url)
    assert loc.url.startswith("postgresql+psycopg://") and loc.file is None
    engine = open_engine(loc)
    assert engine.dialect.driver == "psycopg"
    assert current_revision(engine) == HEAD_REVISION
    assert stored_generation(engine) == HEAD_GENERATION
    assert open_engine(loc) is engine
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO hermes_run (id, path, parent, identifier, finished, read_at, "
                "settled, score_count, score_max) VALUES "
                "(1, 'a/r1', 'a', 'r1', true, 0, true, 3, 0.5)"
            )
        )
        conn.execute(text("INSERT INTO hermes_arg VALUES (1, 0, '--lr 0.1', '--lr', '0.1', 0.1)"))
        conn.execute(text("INSERT INTO hermes_info VALUES (1, 'host', 'gpu1')"))
    with engine.connect() as conn:
        for view, columns in VIEW_COLUMNS.items():
            assert tuple(conn.execute(text(f"SELECT * FROM {view}")).keys()) == columns
        row = conn.execute(text('SELECT "count", "max" FROM runs')).one()
        assert tuple(row) == (3, 0.5)
        assert conn.execute(text("SELECT num FROM run_args WHERE key = '--lr'")).scalar() == 0.1
    dispose_engines()
    # Already at head: opening again does not migrate; index_root stores the fallback.
    engine = open_engine(loc)
    assert index_root(engine, loc, Path("/data/runs")) == Path("/")


def test_postgresql_concurrent_openers(pg_url: str, tmp_path: Path) -> None:
    _open_concurrently(pg_url, tmp_path, count=3)
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [tuple(r) for r in rows] == [(HEAD_REVISION,)]
    finally:
        engine.dispose()


def test_postgresql_newer_and_unknown_schemas(pg_url: str) -> None:
    loc = resolve_index(Path("."), index=pg_url)
    engine = open_engine(loc)
    dispose_engines()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
        conn.execute(text("UPDATE hermes_meta SET value = '99'"))
    with pytest.raises(IndexVersionError, match=f"'ffff'.*'{HEAD_REVISION}'"):
        open_engine(loc)
    with engine.begin() as conn:
        conn.execute(text("UPDATE hermes_meta SET value = '1'"))
    with pytest.raises(CatalogError, match="does not know") as caught:
        open_engine(loc)
    assert not isinstance(caught.value, IndexVersionError)
    engine.dispose()
    # Nothing was dropped; rebuild_index is the explicit way out.
    fresh = rebuild_index(loc)
    assert current_revision(fresh) == HEAD_REVISION
    assert set(VIEW_COLUMNS) <= set(inspect(fresh).get_view_names())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_its_own_engine(tmp_path: Path) -> None:
    loc = _sqlite_location(tmp_path / "i.sqlite")
    parent = open_engine(loc)
    with parent.connect() as conn:  # a pooled connection the child must not reuse
        conn.execute(text("SELECT 1"))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 2
        try:
            child = open_engine(loc)
            code = 0 if child is not parent and current_revision(child) == HEAD_REVISION else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert open_engine(loc) is parent and current_revision(parent) == HEAD_REVISION


def test_a_deadlock_on_postgresql_is_retried(pg_url: str) -> None:
    import threading

    from pyhermes.index.sync.transaction import run_in_transaction

    engine = open_engine(resolve_index(Path("."), index=pg_url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO hermes_meta (key, value) VALUES ('a', '0'), ('b', '0')"))
    barrier = threading.Barrier(2)
    attempts = {"a": 0, "b": 0}
    errors: list[BaseException] = []

    def writer(first: str, second: str) -> None:
        def work(conn) -> None:
            attempts[first] += 1
            conn.execute(text("UPDATE hermes_meta SET value = value || '1' WHERE key = :k"), {"k": first})
            if attempts[first] == 1:
                barrier.wait(10)  # both hold their first row: each now waits for the other's
            conn.execute(text("UPDATE hermes_meta SET value = value || '1' WHERE key = :k"), {"k": second})

        try:
            run_in_transaction(engine, work, "test")
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert attempts["a"] + attempts["b"] == 3  # PostgreSQL broke the deadlock; the loser ran again
    with engine.connect() as conn:
        values = dict(conn.execute(text("SELECT key, value FROM hermes_meta WHERE key IN ('a', 'b')")).all())
    assert values == {"a": "011", "b": "011"}  # both transactions' updates, once each


def test_a_large_sync_into_postgresql_leaves_planner_statistics(pg_url: str, tmp_path: Path) -> None:
    """A first build of many runs analyzes the tables (autovacuum would, a minute or more later)."""
    from make_corpus import make_corpus

    from pyhermes import Experiment

    make_corpus(tmp_path, 520, seed=3, scores_per_run=5)
    assert len(Experiment.load_all(tmp_path, recursive=True, index=pg_url)) == 520
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            analyzed = conn.execute(text(
                "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL ORDER BY relname"
            )).scalars().all()
    finally:
        engine.dispose()
    assert {"hermes_run", "hermes_arg", "hermes_info"} <= set(analyzed)
