"""Lists bound to the index, and the lean path of a fresh process.

A list from ``load_all`` is returned before any Experiment object exists; every
way of reading it must give what an eager list (``index=False``, a plain scan)
gives. CPython reads a list subclass's storage directly in some C paths, so each
reading operation is tested on a list that has not been read yet.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from legacy import make_corpus

from pyhermes import Catalog, Experiment, ExperimentList

WANTED = ("-lr 0.001", "--doubledqn")


def _age(folder: Path, seconds: float = 3600.0) -> None:
    """Set every mtime an hour back: runs that finished long ago, folders listed after.

    The index folder is left alone: a change to the index file that no pyhermes writer
    made is one the next process checks (see pyhermes.index.store.guard)."""
    when = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(folder):
        if ".hermes" in dirnames:
            dirnames.remove(".hermes")
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (when, when))
        os.utime(dirpath, (when, when))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lazy")
    make_corpus(root, 120, seed=5, scores_per_run=50)
    sweep = root / "experiments" / "train_dqn" / "sweep"
    Experiment.load_all(sweep)  # creates the index (and so changes the folder)
    _age(sweep)
    Experiment.load_all(sweep, sync="full")  # listed again, after the runs settled
    return sweep


@pytest.fixture(scope="module")
def eager(folder: Path) -> ExperimentList:
    return Experiment.load_all(folder, index=False)


def _paths(items: Any) -> list[str]:
    return [str(item.path_to_experiment) for item in items]


def _unread(folder: Path) -> ExperimentList:
    runs = Experiment.load_all(folder)
    assert list.__len__(runs) == 0, "load_all built the objects before the list was read"
    return runs


READS: dict[str, Callable[[ExperimentList], Any]] = {
    "len": lambda runs: len(runs),
    "bool": lambda runs: bool(runs),
    "iteration": lambda runs: _paths(iter(runs)),
    "list()": lambda runs: _paths(list(runs)),
    "tuple()": lambda runs: _paths(tuple(runs)),
    "[:]": lambda runs: _paths(runs[:]),
    "slice": lambda runs: _paths(runs[3:17:2]),
    "index": lambda runs: str(runs[-1].path_to_experiment),
    "reversed": lambda runs: _paths(reversed(runs)),
    "sorted": lambda runs: _paths(sorted(runs, key=lambda run: run.identifier)),
    "in": lambda runs: Experiment.load(runs[0].path_to_experiment) in runs,
    "plain + list": lambda runs: _paths([] + runs),
    "list + plain": lambda runs: _paths(runs + []),
    "*unpacking": lambda runs: _paths([*runs]),
    "== eager": lambda runs: runs == Experiment.load_all(runs[0].path_to_experiment.parent, index=False),
    "copy.copy": lambda runs: _paths(copy.copy(runs)),
    "list.copy": lambda runs: _paths(runs.copy()),
    "pickle": lambda runs: _paths(pickle.loads(pickle.dumps(runs))),
    "repr": lambda runs: repr(runs).count("Experiment("),
    "max": lambda runs: str(max(runs, key=lambda run: run.identifier).path_to_experiment),
}


@pytest.mark.parametrize("operation", sorted(READS))
def test_every_read_of_an_unread_list_gives_the_eager_answer(folder, eager, operation):
    expected = READS[operation](eager)
    got = READS[operation](_unread(folder))
    assert got == expected
    if operation == "len":
        assert got == 120


def test_pandas_and_numpy_read_an_unread_list(folder, eager):
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    frame = pd.DataFrame(_unread(folder))
    assert len(frame) == len(eager)
    assert _paths(frame[0]) == _paths(eager)
    array = np.array(_unread(folder), dtype=object)
    assert _paths(array) == _paths(eager)


def test_pickled_runs_keep_their_values_without_the_index(folder, eager):
    runs = pickle.loads(pickle.dumps(_unread(folder)))
    for loaded, scanned in zip(runs, eager, strict=True):
        assert loaded._catalog is None
        assert loaded.exec_arg_lines == scanned.exec_arg_lines
        assert loaded.info_dict == scanned.info_dict
        assert loaded.score_summary.count == scanned.score_summary.count


def test_questions_build_objects_only_for_their_answer(folder, eager):
    runs = _unread(folder)
    selected = runs.filter_by_exec_args(*WANTED)
    newest = selected.latest()
    assert list.__len__(runs) == 0 and list.__len__(selected) == 0
    expected = eager.filter_by_exec_args(*WANTED).latest()
    assert newest.path_to_experiment == expected.path_to_experiment
    top = runs.where("finished").top(3)
    assert list.__len__(runs) == 0
    assert _paths(top) == _paths(eager.where("finished").top(3))
    assert _paths(runs.sort_by_score("max", descending=False)) == _paths(
        eager.sort_by_score("max", descending=False)
    )


def test_lists_of_one_folder_share_their_objects(folder):
    first = Experiment.load_all(folder)
    again = Experiment.load_all(folder)
    best = first.filter_by_exec_args(*WANTED).latest()
    assert best is next(run for run in again if run == best)
    assert all(a is b for a, b in zip(first, again, strict=True))


def test_an_edited_list_answers_in_memory(folder, eager):
    runs = _unread(folder)
    runs.pop()  # now a changed list: its answers no longer come from the index
    assert len(runs) == len(eager) - 1
    assert _paths(runs.where("finished")) == _paths(ExperimentList(eager[:-1]).where("finished"))


def test_catalog_find_is_bound_and_lazy(folder, eager):
    catalog = Catalog.open(folder)
    found = catalog.find("--doubledqn", order_by="-final_mean")
    assert list.__len__(found) == 0
    expected = eager.filter_by_exec_args("--doubledqn").sort_by_score("final_mean")
    assert _paths(found) == _paths(expected)
    assert _paths(catalog.find("--doubledqn", order_by="-final_mean", limit=4).sort_by_score("final_mean")) == (
        _paths(expected[:4])
    )


FRESH = """
import sys
import pyhermes
from pyhermes import Experiment
runs = Experiment.load_all(sys.argv[1])
best = runs.filter_by_exec_args(*sys.argv[2:]).latest()
print(best.path_to_experiment)
heavy = ("numpy", "pandas", "matplotlib", "torch", "alembic", "sqlalchemy")
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
print(",".join(sorted(m for m in sys.modules if m.startswith("pyhermes"))))
"""


def test_a_fresh_process_answers_without_heavy_imports(folder, eager):
    out = subprocess.run(
        [sys.executable, "-c", FRESH, str(folder), *WANTED], capture_output=True, text=True, check=True
    )
    answer, heavy, ours = out.stdout.splitlines()
    assert answer == str(eager.filter_by_exec_args(*WANTED).latest().path_to_experiment)
    assert heavy == ""  # numpy, pandas, matplotlib, torch, alembic and all of SQLAlchemy
    assert set(ours.split(",")) == {
        "pyhermes", "pyhermes.errors", "pyhermes.rundir", "pyhermes.storage", "pyhermes.index",
        "pyhermes.experiment", "pyhermes.runlist", "pyhermes.catalog",
        "pyhermes.rundir._names", "pyhermes.rundir._text", "pyhermes.rundir._parse", "pyhermes.rundir._scores",
        "pyhermes.rundir._listing", "pyhermes.rundir._write", "pyhermes.rundir._torch", "pyhermes.rundir._curation",
        "pyhermes.rundir._files", "pyhermes.index.query.known_keys", "pyhermes.index.query.tokens",
        "pyhermes.index.run_index", "pyhermes.index.store.layout", "pyhermes.index.query.filters",
        "pyhermes.index.query.runs", "pyhermes.index.query.select", "pyhermes.index.query.arg_filters",
        "pyhermes.index.store.sql_reader", "pyhermes.index.sync.unchanged",
        "pyhermes.index.store.schema", "pyhermes.index.rules", "pyhermes.index.store.guard",
        "pyhermes.index.store.sqlitefile", "pyhermes.index.store.location", "pyhermes.notebook", "pyhermes._version",
        "pyhermes.index.store", "pyhermes.index.query", "pyhermes.index.sync",  # docstring-only packages
    }


def test_a_fresh_process_still_syncs_a_changed_folder(folder, tmp_path):
    """The lean path is only taken when nothing changed: a new run is seen (through SQLAlchemy)."""
    import shutil

    copy_of = tmp_path / "experiments" / "train_dqn" / "sweep"
    shutil.copytree(folder, copy_of, ignore=shutil.ignore_patterns(".hermes"))
    Experiment.load_all(copy_of)
    _age(copy_of)
    Experiment.load_all(copy_of, sync="full")
    newest = max(copy_of.iterdir(), key=lambda p: p.name if (p / "hermes.info").exists() else "")
    clone = copy_of / "2099_01_01_000000000000_0_abcde"
    shutil.copytree(newest, clone)
    (clone / f"{newest.name}.scores").rename(clone / f"{clone.name}.scores")
    info = (clone / "hermes.info").read_text().replace("start_time:", "start_time:2099_01_01_000000000000\nold_start:")
    (clone / "hermes.info").write_text(info)
    wanted = [line.strip() for line in (clone / "exec_arguments").read_text().splitlines() if line.strip()]
    out = subprocess.run(
        [sys.executable, "-c", FRESH, str(copy_of), *wanted], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines()[0] == str(clone)


def test_questions_on_a_top_n_stay_within_those_runs(folder, eager):
    runs = _unread(folder)
    best = runs.top(10)
    expected = eager.top(10)
    assert _paths(best.where("--doubledqn")) == _paths(expected.where("--doubledqn"))
    assert _paths(best.sort_by_score("max", descending=False)) == _paths(
        expected.sort_by_score("max", descending=False)
    )
    assert best.latest().path_to_experiment == expected.latest().path_to_experiment
    assert _paths(best.top(3)) == _paths(expected[:3])


@pytest.mark.parametrize("where", ["--doubledqn", "-lr < 0.001 and --doubledqn", "not -es or -bs == 64"])
def test_limited_queries_probe_per_run_with_the_same_answers(folder, where):
    """A few runs wanted: argument conditions are correlated EXISTS instead of IN; same runs."""
    from pyhermes.index.query.filters import Params
    from pyhermes.index.query.grammar import as_filter

    condition = as_filter(where)
    assert "EXISTS" in condition.sql(Params(correlated=True))
    assert "EXISTS" not in condition.sql(Params())
    catalog = Catalog.open(folder)
    whole = catalog.find(where, order_by="-final_mean")
    assert _paths(catalog.find(where, order_by="-final_mean", limit=7)) == _paths(whole[:7])
    assert _paths(catalog.find(where, limit=5)) == _paths(catalog.find(where, order_by=[])[:5])
    assert catalog.find(where).latest() == max(whole, key=lambda run: run.start_time)


def test_a_change_elsewhere_in_the_index_leaves_a_list_answered_in_sql(tmp_path):
    """A live lab writes the index all day: a list stays SQL while the runs it holds are the
    runs its query matches, and answers for the runs it held once its own folder changed."""
    for folder, lr in (("a", "0.1"), ("a", "0.2"), ("b", "0.1")):
        Experiment.create(tmp_path, "train", folder, [f"-lr {lr}"]).finish()
    Experiment.load_all(tmp_path, recursive=True)  # the index serves the whole tree
    folder_a = tmp_path / "experiments" / "train" / "a"
    runs = Experiment.load_all(folder_a)
    Experiment.create(tmp_path, "train", "b", ["-lr 0.1"]).finish()  # elsewhere: written through
    chosen = runs.filter_by_exec_args("-lr 0.1")
    assert not runs._loaded and chosen._source is not None and chosen._indexed()  # still SQL
    assert [run.exec_args_dict["-lr"] for run in chosen] == [0.1]
    newer = Experiment.load_all(folder_a)
    Experiment.create(tmp_path, "train", "a", ["-lr 0.1"]).finish()  # in the list's own folder
    assert not newer._indexed()  # answered for the runs it held, in memory
    assert len(newer.filter_by_exec_args("-lr 0.1")) == 1
    assert len(Experiment.load_all(folder_a).filter_by_exec_args("-lr 0.1")) == 2


def test_one_load_all_reads_its_runs_with_one_query(folder, monkeypatch):
    """A folder's list reads its runs once, when first read: load_all reads neither their rows
    nor their ids (one aggregate tells, should the index change, which runs it held)."""
    from pyhermes.index.query.filters import under
    from pyhermes.index.query.runs import RUN_ROW
    from pyhermes.index.query.select import select_runs
    from pyhermes.index.store import sql_reader

    statements: list[str] = []
    for reader in (sql_reader.SqliteReader, sql_reader.EngineReader):

        def rows(self, sql, params=None, _rows=reader.rows):
            statements.append(sql)
            return _rows(self, sql, params)

        monkeypatch.setattr(reader, "rows", rows)
    runs = Experiment.load_all(folder)
    assert list.__len__(runs) == 0  # still lazy: no Experiment object yet
    bound = len(statements)
    assert len(runs) == 120 and _paths(runs) == sorted(_paths(runs))
    scope = under(runs._source.catalog._rel(folder), False)
    runs_sql = select_runs(RUN_ROW, scope, ["path"])[0]
    assert statements.count(runs_sql) == 1 and statements.index(runs_sql) >= bound
    assert select_runs(["id"], scope, ["path"])[0] not in statements
    assert len(runs) == 120 and statements.count(runs_sql) == 1  # read once
