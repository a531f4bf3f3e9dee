"""Every example in README.md and docs/schema.md runs, against a generated corpus.

``sql`` blocks run through ``Catalog.sql`` and the plain ``sqlite3`` module and must
return rows; ``python`` blocks of one file run in order in one namespace;
``console`` blocks run each ``$ `` line in a shell and must exit 0. All run in a
temporary folder holding ``runs/`` (``scripts/make_corpus.py runs --runs 300``).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from make_corpus import make_corpus

from pyhermes import Experiment
from pyhermes.storage import Catalog

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(path.read_text()) if lang == language]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    make_corpus(folder / "runs", 300, seed=3, scores_per_run=150)
    return folder


@pytest.fixture
def in_workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(workdir)
    return workdir


def test_docs_have_examples():
    assert len(blocks(REPO / "docs" / "schema.md", "sql")) >= 5
    assert blocks(REPO / "README.md", "python")
    assert blocks(REPO / "README.md", "console")


@pytest.mark.parametrize("number", range(len(blocks(REPO / "docs" / "schema.md", "sql"))))
def test_schema_sql_examples(in_workdir, number):
    query = blocks(REPO / "docs" / "schema.md", "sql")[number]
    sweep = in_workdir / "runs" / "experiments" / "train_dqn" / "sweep"
    Experiment.load_all(sweep)
    result = Catalog.open(sweep, sync="none").sql(query)
    assert result.rows, query
    with sqlite3.connect(sweep / ".hermes" / "index.sqlite") as connection:
        assert connection.execute(query).fetchall() == [tuple(row) for row in result.rows]


@pytest.mark.parametrize("document", ["README.md", "docs/schema.md"])
def test_python_examples(in_workdir, document):
    Experiment.load_all(in_workdir / "runs" / "experiments" / "train_dqn" / "sweep")
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for code in blocks(REPO / document, "python"):
        exec(compile(code, document, "exec"), namespace)  # noqa: S102 - our own documentation


def test_console_examples(in_workdir):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "MPLBACKEND": "Agg"}
    env.pop("HERMES_INDEX", None)
    for block in blocks(REPO / "README.md", "console"):
        for line in block.splitlines():
            if not line.startswith("$ "):
                continue
            command = line[2:]
            done = subprocess.run(command, shell=True, cwd=in_workdir, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, command


def test_demo_runs(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), str(out), "--runs", "80"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the ten best by final mean" in done.stdout
    command = done.stdout.strip().splitlines()[-1].split()
    assert command[1:] == ["serve", str(out / "corpus"), "--open"]
    assert Path(command[0]).name == "hermes"
    assert (out / "best_run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grammar_examples(in_workdir):
    examples = [line for block in blocks(REPO / "README.md", "filters")
                for line in block.splitlines() if line.strip()]
    assert len(examples) >= 8
    sweep = in_workdir / "runs" / "experiments" / "train_dqn" / "sweep"
    Experiment.load_all(sweep)
    catalog = Catalog.open(sweep, sync="none")
    plain = Experiment.load_all(sweep, index=False)
    for text in examples:
        assert catalog.count(text) == len(plain.where(text)), text
