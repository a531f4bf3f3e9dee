"""hermes serve's hyperparameter view, in process: ``/params`` and ``/api/params``.

Runs on both index backends (the module is in ``BOTH_BACKENDS``). Every value drawn is
checked against the runs read from disk without any index: each run's exec-argument
lines, parsed here, and its score summaries computed from its scores file.
"""

from __future__ import annotations

import html
import json
import math
import re
from datetime import datetime
from pathlib import Path

import pytest
from legacy import make_corpus, write_run

from pyhermes import Experiment

flask = pytest.importorskip("flask")
pytest.importorskip("plotly")

from pyhermes.web import create_app  # noqa: E402

N_RUNS = 36
#: Runs of the second experiment: an optimiser chosen by text, one run without scores.
ODD = "odd"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("params") / "runs"
    make_corpus(root, N_RUNS, seed=3, scores_per_run=150)
    odd = root / "experiments" / "train_dqn" / ODD
    start = datetime(2024, 5, 1, 12, 0, 0)
    for number, optimiser in enumerate(("adam", "sgd", "adam")):
        write_run(odd, start=start.replace(minute=number), exec_args=(
            "train", "-lr 0.001", "-gamma 0.99", "-bs 64", "-hidden 256", f"-opt {optimiser}",
        ), scores=[float(number * 10 + step) for step in range(120)])
    write_run(odd, start=start.replace(minute=10), exec_args=("train", "-lr 0.001", "-opt rmsprop"))
    return root


@pytest.fixture(scope="module")
def on_disk(corpus: Path) -> dict[str, Experiment]:
    """Every run as read from disk, without any index, by identifier."""
    runs = {}
    for folder in ("sweep", ODD):
        for experiment in Experiment.load_all(corpus / "experiments" / "train_dqn" / folder, index=False):
            runs[experiment.identifier] = experiment
    return runs


@pytest.fixture
def client(corpus: Path, backend: str):
    app = create_app(corpus)
    app.extensions["hermes"].wait()
    yield app.test_client()
    from pyhermes.index.store.engine import dispose_engines

    dispose_engines()


def get_json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.data[:500]
    return json.loads(response.data)


def first_values(experiment: Experiment) -> dict[str, str | None]:
    """The exec args of a run as its file lists them: key -> the text after it (``None`` for a
    flag or positional), the first line of a repeated key."""
    values: dict[str, str | None] = {}
    for line in experiment.exec_arg_lines:
        key, _, rest = line.strip().partition(" ")
        values.setdefault(key, " ".join(rest.split()) or None)
    return values


def varying_on_disk(runs: list[Experiment]) -> set[str]:
    """The keys whose value (or presence) is not the same in every run."""
    args = [first_values(run) for run in runs]
    keys = {key for values in args for key in values}
    return {key for key in keys if len({(key in values, values.get(key)) for values in args}) > 1}


def summary_of(experiment: Experiment, name: str) -> float | None:
    return getattr(experiment.score_summary, name)


def check_against_disk(data: dict, on_disk: dict[str, Experiment]) -> None:
    """Every run drawn: its score and every axis value as on disk; the axes are the varying keys."""
    assert data["identifiers"], data
    for position, identifier in enumerate(data["identifiers"]):
        run = on_disk[identifier]
        assert data["paths"][position].endswith("/" + identifier)
        assert data["scores"][position] == pytest.approx(summary_of(run, data["summary"]), rel=1e-9)
        values = first_values(run)
        for axis in data["axes"]:
            raw, at = axis["raw"][position], axis["values"][position]
            key = axis["key"]
            if key not in values:
                assert raw is None
            elif axis["kind"] == "flag":
                assert raw is True and at == 1
            elif axis["kind"] == "number":
                assert raw == pytest.approx(float(values[key]))
                assert at == pytest.approx(math.log10(raw) if axis["log"] else raw)
            else:
                assert raw == (values[key] if values[key] is not None else "(flag)")
                assert axis["categories"][at] == raw
            if raw is None:
                assert axis["ticktext"][axis["tickvals"].index(at)] == "absent"


def test_every_run_with_scores_is_drawn_with_its_args_and_summary(client, on_disk):
    data = get_json(client, "/api/params")
    scored = [run for run in on_disk.values() if summary_of(run, "final_mean") is not None]
    assert data["matched"] == len(on_disk) == N_RUNS + 4
    assert data["scored"] == data["shown"] == len(scored) and not data["sampled"]
    assert sorted(data["identifiers"]) == sorted(run.identifier for run in scored)
    assert set(data["varying"]) == varying_on_disk(list(on_disk.values()))
    assert [axis["key"] for axis in data["axes"]] == data["varying"]
    check_against_disk(data, on_disk)
    kinds = {axis["key"]: axis["kind"] for axis in data["axes"]}
    assert kinds["--doubledqn"] == "flag" and kinds["-lr"] == "number" and kinds["-opt"] == "text"
    assert kinds["-hidden"] == "text"  # "64 64" is no number
    lr = next(axis for axis in data["axes"] if axis["key"] == "-lr")
    assert lr["log"]  # 0.0001 to 0.01
    assert data["scatter"]["key"] == data["x"] and data["x"] in data["varying"]


def test_runs_without_scores_are_left_out_with_a_note(client, on_disk):
    data = get_json(client, "/api/params?summary=best_window_mean")
    unscored = [run.identifier for run in on_disk.values() if run.score_summary.count == 0]
    assert len(unscored) == 1
    assert data["without_scores"] == 1 and unscored[0] not in data["identifiers"]
    assert any("1 matching run without scores" in note for note in data["notes"])
    check_against_disk(data, on_disk)


def test_a_filter_and_another_summary(client, on_disk):
    data = get_json(client, "/api/params?where=--doubledqn and -gamma = 0.99&summary=max&x=-lr")
    chosen = [run for run in on_disk.values()
              if "--doubledqn" in first_values(run) and first_values(run).get("-gamma") == "0.99"]
    assert data["matched"] == len(chosen) > 2
    assert sorted(data["identifiers"]) == sorted(run.identifier for run in chosen)
    assert set(data["varying"]) == varying_on_disk(chosen)
    assert "--doubledqn" not in data["varying"] and "--doubledqn" in data["constant"]
    assert "-gamma 0.99" in data["constant"]
    assert data["x"] == "-lr" and data["scatter"]["type"] == "log"
    assert data["scatter"]["x"] == next(a for a in data["axes"] if a["key"] == "-lr")["raw"]
    check_against_disk(data, on_disk)


def test_a_text_arg_in_the_scatter_is_categorical(client, on_disk):
    data = get_json(client, f"/api/params?where=experiment_name = {ODD}&x=-opt")
    assert data["x"] == "-opt" and data["scatter"]["type"] == "category"
    assert data["scatter"]["categories"] == ["adam", "sgd"]  # the rmsprop run has no scores
    expected = [first_values(on_disk[identifier]).get("-opt") for identifier in data["identifiers"]]
    assert data["scatter"]["x"] == expected


def test_a_sample_when_more_runs_than_drawn(client, on_disk):
    data = get_json(client, "/api/params?max_runs=10")
    assert data["shown"] == len(data["identifiers"]) == 10 and data["sampled"]
    assert data["scored"] == N_RUNS + 3
    assert any(note.startswith("A sample is drawn: 10 of the") for note in data["notes"])
    # The args that vary are those of every matched run, whatever the sample.
    assert set(data["varying"]) == varying_on_disk(list(on_disk.values()))
    assert get_json(client, "/api/params?max_runs=10")["identifiers"] == data["identifiers"]
    check_against_disk(data, on_disk)


def test_nothing_to_draw_says_why(client, on_disk):
    nothing = get_json(client, "/api/params?where=final_mean > 1e9")
    assert nothing["matched"] == 0 and nothing["axes"] == [] and "No run matches" in nothing["message"]
    one = next(iter(on_disk))
    alone = get_json(client, f"/api/params?where=identifier = {one}")
    assert alone["matched"] == 1 and alone["varying"] == [] and "no arg can vary" in alone["message"]
    unscored = next(run for run in on_disk.values() if run.score_summary.count == 0)
    empty = get_json(client, f"/api/params?where=identifier = {unscored.identifier}")
    assert empty["scored"] == 0 and "none has scores" in empty["message"]
    page = client.get(f"/params?where=identifier = {one}").get_data(as_text=True)
    assert 'id="params-message"' in page and 'id="params-data"' not in page


def test_an_unknown_x_falls_back_with_a_note(client):
    data = get_json(client, "/api/params?x=-nosuch")
    assert data["x"] in data["varying"]
    assert any("-nosuch does not vary" in note for note in data["notes"])


def test_bad_input_is_a_clear_400(client):
    error = get_json(client, "/api/params?where=-lr <", 400)
    assert "position" in error and "^" in error["error"]
    assert "unknown score summary" in get_json(client, "/api/params?summary=nope", 400)["error"]
    assert "max_runs" in get_json(client, "/api/params?max_runs=0", 400)["error"]
    page = client.get("/params?where=-lr <")
    assert page.status_code == 400 and 'id="error"' in page.get_data(as_text=True)


def test_the_page_keeps_its_state_and_holds_the_data_of_the_api(client):
    url = "where=--doubledqn&summary=best_window_mean&x=-gamma"
    response = client.get("/params?" + url)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'value="--doubledqn"' in page
    assert '<option value="best_window_mean" selected>' in page
    assert '<option value="-gamma" selected>' in page
    assert '<script src="/static/params.js" defer>' in page
    embedded = re.search(r'<script type="application/json" id="params-data">(.*?)</script>', page, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == get_json(client, "/api/params?" + url)
    count = re.search(r'id="count" data-total="(\d+)"', page)
    assert count is not None and int(count.group(1)) == json.loads(embedded.group(1))["matched"]
    compare = re.search(r'href="([^"]+)" id="params-compare"', page)
    assert compare is not None and "group_by=-gamma" in html.unescape(compare.group(1))
    assert client.get("/static/params.js").status_code == 200
