"""Shared test set-up: the legacy fixture builder is importable as ``legacy``, the corpus
generator as ``make_corpus`` (``scripts/`` is on ``sys.path``); engines are disposed.

``read_only_corpus`` is one generated corpus for the whole session, for tests that only
read it (see the fixture).

The index backends: ``pg_server`` is one throwaway PostgreSQL server for the
session, ``pg_url`` a new empty database on it. Test modules listed in
:data:`BOTH_BACKENDS` run every test twice, on a SQLite index and with
``HERMES_INDEX`` naming a new PostgreSQL database (the ``backend`` fixture); a
test marked ``sqlite_only`` (it checks the SQLite file itself) runs once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI machines are small and shared: judge properties, not the speed of one example.
settings.register_profile("pyhermes", deadline=None)
settings.load_profile("pyhermes")

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

REPO = TESTS.parent
#: The scripts shared with the tests (``make_corpus``, ``pg_server``): plain modules, imported by name.
SCRIPTS = REPO / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.append(str(SCRIPTS))

import index_files  # noqa: E402

index_files.install()
#: Put first on a child process's PYTHONPATH, it installs the same audit hook there.
AUDIT_SITE = TESTS / "audit_site"


@pytest.fixture(autouse=True)
def _only_sqlite_opens_index_files():
    """Fails a test in which any code opened an index file, or its -wal/-shm/-journal, itself."""
    index_files.take_violations()
    yield
    found = index_files.take_violations()
    if found:
        pytest.fail("an index file was opened outside SQLite:\n" + "\n".join(found[:3]), pytrace=False)

#: Test modules whose every test runs on both index backends.
BOTH_BACKENDS = frozenset({"test_query", "test_sync", "test_cli", "test_reliability", "test_web_params"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: the test checks the SQLite index file itself; not run on PostgreSQL"
    )
    config.addinivalue_line("markers", "slow: a long test (still run by make test)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if module not in BOTH_BACKENDS or "backend" in metafunc.fixturenames:
        if "backend" in metafunc.fixturenames:
            _parametrize_backend(metafunc)
        return
    metafunc.fixturenames.append("backend")
    _parametrize_backend(metafunc)


def _parametrize_backend(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        backends = ["sqlite"]
    else:
        backends = ["sqlite", "postgresql"]
    metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture(autouse=True)
def _backend_of_the_test(request: pytest.FixtureRequest) -> None:
    """Sets up the ``backend`` parameter of a test in a :data:`BOTH_BACKENDS` module."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "backend" in callspec.params:
        request.getfixturevalue("backend")


@pytest.fixture(scope="session")
def pg_server():
    """The URL of a throwaway PostgreSQL server, started once per session."""
    from pg import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str):
    """The URL of a new, empty database on the throwaway PostgreSQL server (dropped afterwards)."""
    from pg import drop_database, new_database

    url = new_database(pg_server)
    yield url
    if "pyhermes.index.store.engine" in sys.modules:
        sys.modules["pyhermes.index.store.engine"].dispose_engines()
    drop_database(pg_server, url)


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, _isolated_index_env):
    """``"sqlite"`` (the default index places), or ``"postgresql"`` with ``HERMES_INDEX`` set to
    a new database; the URL is ``request.node.pg_index`` then."""
    kind = getattr(request, "param", "sqlite")
    if kind == "postgresql":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("HERMES_INDEX", url)
        request.node.pg_index = url
    return kind


@pytest.fixture(autouse=True)
def _isolated_index_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test sees the developer's HERMES_INDEX or per-user cache."""
    monkeypatch.delenv("HERMES_INDEX", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    if "pyhermes.index.store.engine" in sys.modules:
        sys.modules["pyhermes.index.store.engine"].dispose_engines()


#: The arguments of the session's read-only corpus (:func:`read_only_corpus`).
READ_ONLY_CORPUS = {"runs": 300, "seed": 11, "scores_per_run": 120}


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every entry below ``root`` (symlinks not followed), by relative path."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            status = os.lstat(path)
            state[os.path.relpath(path, root)] = (status.st_size, status.st_mtime_ns)
    return state


@pytest.fixture(scope="session")
def read_only_corpus(tmp_path_factory: pytest.TempPathFactory):
    """The sweep folder (``<root>/experiments/train_dqn/sweep``) of one corpus generated once
    per session by ``make_corpus`` with :data:`READ_ONLY_CORPUS`, for tests that only read runs.

    Every module that asks for it gets the same folder, so a test using it never writes,
    ages, renames or removes anything below ``<root>``, and keeps each index it builds
    outside the tree: ``index=`` a file in a temporary folder of its own (the default index
    would be created inside the corpus and shared with other modules). A test that writes
    runs, syncs after changing them, or needs an index state of its own generates its own
    corpus. When the session ends, the tree must be exactly as generated (every entry's
    size and mtime), else the fixture fails.
    """
    from make_corpus import make_corpus

    root = tmp_path_factory.mktemp("read-only-corpus")
    make_corpus(root, **READ_ONLY_CORPUS)
    generated = _tree_state(root)
    yield root / "experiments" / "train_dqn" / "sweep"
    now = _tree_state(root)
    changed = sorted(path for path in generated.keys() | now.keys() if generated.get(path) != now.get(path))
    if changed:
        pytest.fail(
            f"a test changed the read-only corpus {root} ({len(changed)} entries, e.g. "
            f"{', '.join(changed[:3])}): tests that write make their own corpus",
            pytrace=False,
        )


@pytest.fixture
def quirky(tmp_path: Path) -> dict:
    """A legacy tree with every quirk of the format (see tests/legacy.py)."""
    from legacy import build_quirky_tree

    return build_quirky_tree(tmp_path / "tree")


@pytest.fixture
def plt():
    """matplotlib.pyplot on the headless Agg backend; closes every figure afterwards."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    yield pyplot
    pyplot.close("all")
