"""Lists bound to the index, and the lean path of a fresh process.

A list from ``load_all`` is returned before any Experiment object exists; every
way of reading it must give what an eager list (``index=False``, a plain scan)
gives. CPython reads a list subclass's storage directly in some C paths, so each
reading operation is tested on a list that has not been read yet. ``len``, ``x[i]``
and slices of an unread list build no object for the runs they do not return.
"""

from __future__ import annotations

import array
import copy
import itertools
import operator
import os
import pickle
import random
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
    "x[5]": lambda runs: str(runs[5].path_to_experiment),
    "x[-3]": lambda runs: str(runs[-3].path_to_experiment),
    "x[-120]": lambda runs: str(runs[-120].path_to_experiment),
    "x[10:20]": lambda runs: _paths(runs[10:20]),
    "x[-5:]": lambda runs: _paths(runs[-5:]),
    "x[::-7]": lambda runs: _paths(runs[::-7]),
    "x[200:300]": lambda runs: _paths(runs[200:300]),
    "x[10:20] is a": lambda runs: type(runs[10:20]).__name__,
    "x[120]": lambda runs: _raised(lambda: runs[120]),
    "x[-121]": lambda runs: _raised(lambda: runs[-121]),
    "x['a']": lambda runs: _raised(lambda: runs["a"]),
    "x[True]": lambda runs: str(runs[True].path_to_experiment),
    "len(x[:])": lambda runs: len(runs[:]),
    "random.choice": lambda runs: str(random.Random(3).choice(runs).path_to_experiment),
    "random.sample": lambda runs: _paths(random.Random(7).sample(runs, 6)),
    "enumerate": lambda runs: [(at, str(run.path_to_experiment)) for at, run in enumerate(runs)],
    "zip": lambda runs: [(str(run.path_to_experiment), at) for run, at in zip(runs, range(50), strict=False)],
    "itertools.islice": lambda runs: _paths(itertools.islice(runs, 5, 40, 3)),
    "x * 2": lambda runs: _paths(runs * 2),
    "index()": lambda runs: runs.index(runs[77]),
    "count()": lambda runs: runs.count(runs[77]),
    "copy.deepcopy": lambda runs: _paths(copy.deepcopy(runs)),
    "range(len(x))": lambda runs: [str(runs[at].path_to_experiment) for at in range(0, len(runs), 9)],
}


def _raised(read: Callable[[], Any]) -> tuple[str, str]:
    """The type and message of what ``read`` raised (it must raise)."""
    with pytest.raises(Exception) as caught:
        read()
    return type(caught.value).__name__, str(caught.value)


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
    unread = _unread(folder)
    assert len(unread) == 120 and list.__len__(unread) == 0  # len() no longer fills the list
    plain = np.asarray(unread)
    assert plain.shape == (120,) and plain.dtype == object and _paths(plain) == _paths(eager)
    assert _paths(pd.Series(_unread(folder))) == _paths(eager)
    assert _paths(pd.DataFrame({"runs": _unread(folder)})["runs"]) == _paths(eager)


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
        "pyhermes.index.query.bound",
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


def _settled(root: Path, runs: int) -> Path:
    """A sweep of ``runs`` runs below ``root``, indexed, settled and listed again."""
    make_corpus(root, runs, seed=9, scores_per_run=5)
    sweep = root / "experiments" / "train_dqn" / "sweep"
    Experiment.load_all(sweep)
    _age(sweep)
    Experiment.load_all(sweep, sync="full")
    return sweep


def test_len_and_indexing_build_only_the_runs_they_return(tmp_path):
    """A folder's list of 300 runs: len, x[0], x[-1], x[100:110] build those 12 objects, no
    other; its ids are one compact array; a later full read gives the eager list, with the
    same objects for the runs already built."""
    folder = _settled(tmp_path, 300)
    eager = Experiment.load_all(folder, index=False)
    runs = _unread(folder)
    pool = runs._source.pool
    assert len(runs) == 300 and pool.runs == {}  # the count is the list's fingerprint
    first, last, middle = runs[0], runs[-1], runs[100:110]
    assert list.__len__(runs) == 0 and not runs._loaded
    assert sorted(pool.runs) == sorted(run._run_id for run in (first, last, *middle))
    assert len(pool.runs) == 12
    assert _paths([first, last]) == _paths([eager[0], eager[-1]])
    assert _paths(middle) == _paths(eager[100:110]) and type(middle) is list
    ids = runs._source.read_ids[1]
    assert isinstance(ids, array.array) and ids.typecode == "q" and ids.itemsize == 8 and len(ids) == 300
    assert runs[250] is runs[250] and len(pool.runs) == 13  # one object per run, built once
    whole = list(runs)
    assert _paths(whole) == _paths(eager) and list.__len__(runs) == 300
    assert whole[0] is first and whole[-1] is last and all(map(operator.is_, whole[100:110], middle))
    assert ids.tolist() == [run._run_id for run in whole]
    runs.append(first)  # an ordinary list from then on
    assert len(runs) == 301 and runs[-1] is first and not runs._indexed()


DERIVED: dict[str, Callable[[ExperimentList], ExperimentList]] = {
    "where": lambda runs: runs.where("finished and -lr < 0.01"),
    "filter_by_exec_args": lambda runs: runs.filter_by_exec_args("--doubledqn"),
    "sort_by_score": lambda runs: runs.sort_by_score("max", descending=False),
    "top": lambda runs: runs.top(17),
    "top of a where": lambda runs: runs.where("--doubledqn").top(40, by="final_mean"),
    "where of a sort": lambda runs: runs.sort_by_score().where("-bs == 64"),
}


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_derived_lists_count_and_index_without_building_the_rest(folder, eager, name):
    derived = DERIVED[name](_unread(folder))
    expected = DERIVED[name](eager)
    assert list.__len__(derived) == 0
    assert len(derived) == len(expected) > 3
    assert str(derived[-1].path_to_experiment) == str(expected[-1].path_to_experiment)
    assert _paths(derived[1:-1:3]) == _paths(expected[1:-1:3])
    assert _paths(derived[:3]) == _paths(expected[:3])
    with pytest.raises(IndexError):
        derived[len(expected)]
    assert list.__len__(derived) == 0
    assert _paths(derived) == _paths(expected)


def test_a_find_list_counts_and_indexes_lazily(folder, eager):
    found = Catalog.open(folder).find("--doubledqn", order_by="-final_mean")
    expected = eager.filter_by_exec_args("--doubledqn").sort_by_score("final_mean")
    assert len(found) == len(expected) and _paths(found[5:9]) == _paths(expected[5:9])
    assert str(found[-2].path_to_experiment) == str(expected[-2].path_to_experiment)
    assert list.__len__(found) == 0 and _paths(found) == _paths(expected)


def test_an_unread_list_answers_for_what_it_held_after_its_folder_changed(tmp_path):
    """len, x[i] and slices of a list whose folder got a new run give what it held when made."""
    for lr in ("0.1", "0.2", "0.3"):
        Experiment.create(tmp_path, "train", "a", [f"-lr {lr}"]).finish()
    folder = tmp_path / "experiments" / "train" / "a"
    held = _paths(Experiment.load_all(folder, index=False))
    read_before = Experiment.load_all(folder)
    assert len(read_before) == 3 and str(read_before[-1].path_to_experiment) == held[-1]
    unread = Experiment.load_all(folder)
    Experiment.create(tmp_path, "train", "a", ["-lr 0.4"]).finish()
    assert len(unread) == 3 and _paths(unread[0:2]) == held[:2]
    assert len(read_before) == 3 and _paths(read_before[:]) == held
    assert [str(read_before[at].path_to_experiment) for at in (0, -1)] == [held[0], held[-1]]
    assert _paths(unread) == held and _paths(read_before) == held
    assert len(Experiment.load_all(folder)) == 4


def test_run_id_array_gives_the_ids_of_run_ids(backend, tmp_path, monkeypatch):
    """On SQLite and PostgreSQL: the compact ids of a query are its ids, in its order (the text
    path also for a few runs here), and a list of the folder counts and indexes from them."""
    from pyhermes.index.query import runs as run_queries
    from pyhermes.index.query.grammar import as_filter

    folder = _settled(tmp_path, 60)
    eager = Experiment.load_all(folder, index=False)
    catalog = Catalog.open(folder)
    monkeypatch.setattr(run_queries, "ID_ROWS_LIMIT", 5)
    for where in ("finished", "--doubledqn and -lr < 0.01", "-lr > 100"):
        condition = as_filter(where)
        for order in (["path"], ["-final_mean"], ["-lr", "start_time"], ["-hidden"], []):
            for limit in (None, 7, 2):
                ids = catalog.run_id_array(condition, order, limit)
                assert isinstance(ids, array.array) and ids.typecode == "q"
                assert ids.tolist() == catalog.run_ids(condition, order, limit), (where, order, limit)
    runs = _unread(folder)
    assert len(runs) == 60 and _paths(runs[-7:-1]) == _paths(eager[-7:-1])
    assert list.__len__(runs) == 0 and _paths(runs.sort_by_score()[10:14]) == _paths(eager.sort_by_score()[10:14])


def test_ids_joined_out_of_order_are_put_back_by_their_positions():
    from pyhermes.index.query.runs import _in_position, _int_array

    assert _int_array(None).tolist() == [] and _int_array("").tolist() == []
    assert _int_array("3,1,2").tolist() == [3, 1, 2]
    in_order = _int_array("7,5,9")
    assert _in_position(_int_array("1,2,3"), in_order) is in_order
    assert _in_position(_int_array("2,3,1"), _int_array("70,90,50")).tolist() == [50, 70, 90]


def test_a_run_handed_out_and_erased_stays_in_the_list(tmp_path):
    """``runs[0].erase()`` then ``runs[1]``: the list still holds the erased run, as an eager one."""
    folder = _settled(tmp_path, 5)
    eager = [str(run.path_to_experiment) for run in Experiment.load_all(folder, index=False)]
    runs = _unread(folder)
    victim = runs[0]
    victim.erase()
    assert len(runs) == 5 and str(runs[1].path_to_experiment) == eager[1]
    assert _paths(runs) == eager and runs[0] is victim
    assert len(Experiment.load_all(folder)) == 4
