"""Shared test set-up: the legacy fixture builder is importable as ``legacy``; engines are disposed."""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def _isolated_index_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test sees the developer's HERMES_INDEX or per-user cache."""
    monkeypatch.delenv("HERMES_INDEX", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    if "pyhermes.index.engine" in sys.modules:
        sys.modules["pyhermes.index.engine"].dispose_engines()


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
