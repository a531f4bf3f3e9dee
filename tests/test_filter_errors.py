"""Clear answers to bad filter input: a key no run has, an exec arg ordered by a word, two
conditions side by side; the same in the library (``where``), ``hermes ls --where`` and
``hermes serve`` (``/runs``, ``/api/runs``, ``/compare``).

Known keys are read by the test from the runs' ``exec_arguments`` files, not from the index.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from legacy import corpus_fixture

from pyhermes import Catalog, Experiment, QueryError, flag
from pyhermes.cli import hermes_main
from pyhermes.errors import UnknownKeyError
from pyhermes.index.query.known_keys import close_keys
from pyhermes.storage import ExperimentList

N_RUNS = 24


corpus = corpus_fixture("filter-errors", N_RUNS, seed=7, scores_per_run=60)


@pytest.fixture(scope="module")
def disk_keys(corpus: Path) -> set[str]:
    """The exec-arg keys of the runs, read from their files."""
    keys = set()
    for arguments in corpus.rglob("exec_arguments"):
        keys.update(line.split()[0] for line in arguments.read_text().splitlines() if line.split())
    return keys


@pytest.fixture(scope="module")
def on_disk(corpus: Path) -> ExperimentList:
    """The runs read from disk, without any index: a list filtered in memory."""
    return Experiment.load_all(corpus, recursive=True, index=False)


def first_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    return str(error.value).split("\n")[0]


# --------------------------------------------------------------------------- library, on an index


def test_the_corpus_has_the_keys_the_tests_misspell(disk_keys: set[str]) -> None:
    assert {"--doubledqn", "-lr", "-seed", "train"} <= disk_keys
    assert not {"--doubledqm", "lr", "-sed"} & disk_keys


UNKNOWN = [
    ("--doubledqm", 0, "no run has `--doubledqm`; did you mean `--doubledqn`?"),
    ("lr = 0.001", 0, "no run has `lr`, and `lr` is no run field or score summary; did you mean `-lr`?"),
    ("not --doubledqm", 4, "no run has `--doubledqm`; did you mean `--doubledqn`?"),
    ("-lr < 0.01 and -sed in (1, 2)", 15, "no run has `-sed`; did you mean `-seed`"),
    ("finished and (--doubledqm or -lr > 1)", 14, "did you mean `--doubledqn`?"),
    ("final_men > 100", 0, "no run has `final_men`, and `final_men` is no run field or score "
     "summary; did you mean `final_mean`?"),
    ("tags = paper", 0, "did you mean `tag`?"),
    ("-LR = 0.1", 0, "did you mean `-lr`?"),
]


@pytest.mark.parametrize(("text", "position", "message"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_a_key_no_run_has_names_the_closest_keys(
    backend: str, corpus: Path, text: str, position: int, message: str
) -> None:
    runs = Experiment.load_all(corpus, recursive=True)
    with pytest.raises(UnknownKeyError) as caught:
        runs.where(text)
    assert isinstance(caught.value, QueryError) and isinstance(caught.value, ValueError)
    assert first_line(caught).startswith("no run has ") and message in first_line(caught)
    assert caught.value.position == position
    assert str(caught.value).split("\n")[1:3] == [f"  {text}", "  " + " " * position + "^"]


def test_the_error_carries_the_key_and_the_suggestions(backend: str, corpus: Path) -> None:
    with pytest.raises(UnknownKeyError) as caught:
        Experiment.load_all(corpus, recursive=True).where("--doubledqn and lr = 0.001")
    assert caught.value.key == "lr"
    assert caught.value.suggestions[0] == "-lr"


def test_every_unknown_key_is_named(backend: str, corpus: Path) -> None:
    with pytest.raises(UnknownKeyError) as caught:
        Experiment.load_all(corpus, recursive=True).where("--doubledqm or -sed = 1 or --doubledqm")
    lines = str(caught.value).split("\n")
    assert lines[0].startswith("no run has `--doubledqm`")
    assert lines[-1] == "no run has `-sed` either"


def test_with_nothing_close_the_keys_there_are_are_listed(
    backend: str, corpus: Path, disk_keys: set[str]
) -> None:
    with pytest.raises(UnknownKeyError) as caught:
        Experiment.load_all(corpus, recursive=True).where("--zzzzzzzz")
    assert caught.value.suggestions == ()
    listed = first_line(caught).split("; the exec-arg keys of the runs are ", 1)[1]
    assert set(listed.split(", ")) == disk_keys


def test_an_empty_index_says_it_holds_no_runs(backend: str, tmp_path: Path) -> None:
    runs = Experiment.load_all(tmp_path)
    with pytest.raises(UnknownKeyError) as caught:
        runs.where("--doubledqn")
    assert first_line(caught) == "no run has `--doubledqn`: the index holds no runs yet"
    assert len(runs.where("finished")) == 0  # fields need no run to be known


KNOWN = [
    "finished",
    "not finished",
    "train",
    "--doubledqn and -lr < 0.01",
    "not --doubledqn or -seed in (1, 2, 3)",
    "final_mean > 100",
    "-lr >= 1e-3 and final_mean > 0",
    '-lr < "0.01"',
    "-lr < inf",
    "tag = paper",
    'note ~ "t"',
    "info.comments contains a",
    "info.no_such_key = x",  # info keys are free-form: not checked
    "start_time > 2000-01-01",
]


@pytest.mark.parametrize("text", KNOWN)
def test_known_keys_and_fields_filter_as_before(
    backend: str, corpus: Path, on_disk: ExperimentList, text: str
) -> None:
    """The index answers like the runs read from disk, filtered in memory (checked the same way)."""
    indexed = Experiment.load_all(corpus, recursive=True).where(text)
    expected = on_disk.where(text)
    assert sorted(run.identifier for run in indexed) == sorted(run.identifier for run in expected)


def test_the_matches_are_not_trivial(backend: str, corpus: Path) -> None:
    runs = Experiment.load_all(corpus, recursive=True)
    assert 0 < len(runs.where("--doubledqn")) < N_RUNS
    assert 0 < len(runs.where("-lr < 0.01")) < N_RUNS


def test_filters_built_in_python_are_taken_as_meant(backend: str, corpus: Path) -> None:
    runs = Experiment.load_all(corpus, recursive=True)
    assert len(runs.where(flag("--doubledqm"))) == 0
    assert len(runs.where(~flag("--doubledqm"))) == N_RUNS


def test_catalog_queries_check_the_keys_too(backend: str, corpus: Path) -> None:
    catalog = Catalog.open(corpus)
    for ask in (catalog.count, catalog.find, catalog.table):
        with pytest.raises(UnknownKeyError, match="did you mean `--doubledqn`"):
            ask("--doubledqm")
    assert catalog.count("--doubledqn") == len(Experiment.load_all(corpus, recursive=True).where("--doubledqn"))


def test_an_exec_arg_ordered_by_a_word_is_an_error(backend: str, corpus: Path) -> None:
    runs = Experiment.load_all(corpus, recursive=True)
    with pytest.raises(QueryError) as caught:
        runs.where("-lr < abc")
    assert not isinstance(caught.value, UnknownKeyError)
    assert first_line(caught) == "'<' compares -lr as a number, and 'abc' is not a number at position 6"
    assert 'quote it: -lr < "abc"' in str(caught.value)


def test_two_conditions_side_by_side_suggest_the_fix(backend: str, corpus: Path) -> None:
    runs = Experiment.load_all(corpus, recursive=True)
    with pytest.raises(QueryError) as caught:
        runs.where("--doubledqn -lr 0.001")
    assert "did you mean `--doubledqn and -lr = 0.001`?" in str(caught.value)
    assert len(runs.where("--doubledqn and -lr = 0.001")) >= 0  # the suggestion is a filter


# --------------------------------------------------------------------------- lists built by hand


def test_a_hand_built_list_knows_the_keys_of_its_runs(on_disk: ExperimentList) -> None:
    without = ExperimentList(run for run in on_disk if "--doubledqn" not in run.exec_args_dict)
    assert 0 < len(without) < len(on_disk)
    with pytest.raises(UnknownKeyError) as caught:
        without.where("not --doubledqn")
    assert first_line(caught).startswith("no run has `--doubledqn`")
    assert len(on_disk.where("--doubledqn")) == len(on_disk) - len(without)
    assert len(without.where(~flag("--doubledqn"))) == len(without)


def test_a_hand_built_list_suggests_like_the_index(on_disk: ExperimentList) -> None:
    with pytest.raises(UnknownKeyError) as caught:
        on_disk.where("lr = 0.001")
    assert "did you mean `-lr`?" in first_line(caught)


def test_an_empty_list_says_it_holds_no_runs() -> None:
    with pytest.raises(UnknownKeyError) as caught:
        ExperimentList([]).where("-lr < 0.01")
    assert first_line(caught) == "no run has `-lr`: the list holds no runs"


def test_close_keys_ignore_dashes_and_case_first() -> None:
    keys = ["-lr", "--lr2", "-seed", "--doubledqn"]
    assert close_keys("lr", keys)[0] == "-lr"
    assert close_keys("--LR", keys)[0] == "-lr"
    assert close_keys("--doubledqm", keys) == ("--doubledqn",)
    assert close_keys("--zzz", keys) == ()
    assert "final_mean" in close_keys("final_men", keys)
    assert "final_mean" not in close_keys("-final_men", keys)  # a dashed name is an exec-arg key


# --------------------------------------------------------------------------- hermes ls


def call_ls(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = hermes_main(["ls", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("--doubledqm", "no run has `--doubledqm`; did you mean `--doubledqn`?"),
        ("lr = 0.001", "did you mean `-lr`?"),
        ("-lr < abc", "'<' compares -lr as a number, and 'abc' is not a number"),
        ("--doubledqn -lr 0.001", "unexpected '-lr'"),
    ],
)
def test_hermes_ls_answers_bad_input_on_stderr(
    backend: str, corpus: Path, capsys: pytest.CaptureFixture[str], where: str, message: str
) -> None:
    code, out, err = call_ls(capsys, str(corpus), f"--where={where}")
    assert code == 1 and out == ""
    assert err.startswith("hermes: error: ") and message in err.split("\n")[0]
    assert "Traceback" not in err
    if where == "--doubledqn -lr 0.001":
        assert "did you mean `--doubledqn and -lr = 0.001`?" in err


# --------------------------------------------------------------------------- hermes serve


@pytest.fixture(scope="module")
def client(corpus: Path):
    pytest.importorskip("flask")
    from pyhermes.index.store.engine import dispose_engines
    from pyhermes.web import create_app

    application = create_app(corpus)
    application.extensions["hermes"].wait()
    yield application.test_client()
    dispose_engines()


def test_api_runs_answers_an_unknown_key_with_a_json_400(client) -> None:
    response = client.get("/api/runs?where=--doubledqm")
    assert response.status_code == 400
    data = json.loads(response.data)
    assert data["error"].startswith("no run has `--doubledqm`; did you mean `--doubledqn`?")
    assert data["position"] == 0


@pytest.mark.parametrize("path", ["/runs", "/compare"])
def test_the_pages_show_the_suggestion(client, path: str) -> None:
    response = client.get(path, query_string={"where": "-lr < 0.01 and lr = 0.001"})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "no run has `lr`, and `lr` is no run field or score summary; did you mean `-lr`?" in text
    assert "Traceback" not in text


def test_api_runs_answers_a_word_ordering_an_arg_with_a_json_400(client) -> None:
    data = json.loads(client.get("/api/runs?where=-lr < abc").data)
    assert "'abc' is not a number" in data["error"] and data["position"] == 6
