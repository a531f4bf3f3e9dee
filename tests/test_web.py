"""hermes serve, in process: the pages and the JSON API against a real index of a generated corpus.

Answers are checked against what the library computes from the disk alone
(``Experiment.load_all(index=False)`` and in-memory filters), not against the
code that produced them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from legacy import corpus_fixture, write_run

from pyhermes import Catalog, Experiment
from pyhermes.present import MAX_PER_PAGE

flask = pytest.importorskip("flask")
pytest.importorskip("plotly")

from pyhermes.web import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_RUNS = 120


corpus = corpus_fixture("web", N_RUNS, seed=5, scores_per_run=300)


@pytest.fixture(scope="module")
def sweep(corpus: Path) -> Path:
    return corpus / "experiments" / "train_dqn" / "sweep"


@pytest.fixture(scope="module")
def on_disk(sweep: Path):
    """The runs as read from disk, without any index: the independent answer."""
    return Experiment.load_all(sweep, index=False)


@pytest.fixture(scope="module")
def app(corpus: Path):
    application = create_app(corpus)
    application.extensions["hermes"].wait()
    yield application
    from pyhermes.index.store.engine import dispose_engines

    dispose_engines()


@pytest.fixture
def client(app):
    return app.test_client()


def get_json(client, url: str, status: int = 200):
    response = client.get(url)
    assert response.status_code == status, response.data[:500]
    return json.loads(response.data)


# --------------------------------------------------------------------------- runs


def test_runs_page_shows_a_page_and_the_count(client):
    response = client.get("/runs")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert f'data-total="{N_RUNS}"' in text
    assert f"{N_RUNS} runs match" in text
    assert text.count('class="run-link"') == 50
    for column in ("identifier", "start_time", "finished", "-lr", "--doubledqn", "final_mean"):
        assert f'data-column="{column}"' in text or f">{column}<" in text


def test_filter_matches_the_in_memory_filter(client, on_disk):
    expression = "--doubledqn and -lr < 0.001 and final_mean > -100"
    data = get_json(client, "/api/runs?" + _query(where=expression, per_page=500))
    expected = on_disk.where(expression)
    assert 0 < data["total"] == len(expected) < N_RUNS
    assert sorted(run["identifier"] for run in data["runs"]) == sorted(
        run.identifier for run in expected
    )


def test_sort_by_summary_and_by_arg(client, on_disk):
    data = get_json(client, "/api/runs?sort=-final_mean&per_page=10")
    best = on_disk.sort_by_score("final_mean")[:10]
    assert [run["identifier"] for run in data["runs"]] == [run.identifier for run in best]
    values = [run["values"]["final_mean"] for run in data["runs"]]
    assert values == sorted(values, reverse=True)

    data = get_json(client, "/api/runs?" + _query(sort="-lr:desc", per_page=500))
    lrs = [run["values"]["-lr"] for run in data["runs"]]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] > lrs[-1]


def test_paging_covers_every_run_once(client, on_disk):
    seen: list[str] = []
    page = 1
    while True:
        data = get_json(client, f"/api/runs?per_page=25&page={page}&sort=identifier")
        assert data["pages"] == -(-N_RUNS // 25)
        seen.extend(run["identifier"] for run in data["runs"])
        if page == data["pages"]:
            break
        page += 1
    assert seen == sorted(run.identifier for run in on_disk)
    last = get_json(client, f"/api/runs?per_page=25&page={data['pages']}&sort=identifier")
    for past_the_end in (data["pages"] + 1, 999_999, 9223372036854775808, 10**30):
        clamped = get_json(client, f"/api/runs?per_page=25&page={past_the_end}&sort=identifier")
        assert clamped["page"] == data["pages"] and clamped["runs"] == last["runs"]
        page = client.get(f"/runs?per_page=25&page={past_the_end}&sort=identifier")
        text = page.get_data(as_text=True)
        first = (data["pages"] - 1) * 25 + 1
        assert page.status_code == 200 and f"showing {first:,}–{N_RUNS:,} · page {data['pages']}" in text
    for before_the_start in (0, -1, -9223372036854775809):
        assert get_json(client, f"/api/runs?per_page=25&page={before_the_start}")["page"] == 1


def test_huge_page_size_is_capped(client):
    data = get_json(client, "/api/runs?per_page=10000000")
    assert data["per_page"] == MAX_PER_PAGE
    assert len(data["runs"]) == min(N_RUNS, MAX_PER_PAGE)
    page = client.get("/runs?per_page=10000000").get_data(as_text=True)
    assert page.count('class="run-link"') == min(N_RUNS, MAX_PER_PAGE)


def test_columns_are_chosen_in_the_url(client, on_disk):
    data = get_json(client, "/api/runs?columns=identifier,-gamma,info.commit_hash&per_page=5")
    assert data["columns"] == ["identifier", "-gamma", "info.commit_hash"]
    by_id = {run.identifier: run for run in on_disk}
    for run in data["runs"]:
        expected = by_id[run["identifier"]]
        assert run["values"]["-gamma"] == expected.exec_args_dict.get("-gamma")
        assert run["values"]["info.commit_hash"] == expected.info_dict["commit_hash"]
    # The column picker's form sends repeated column= values.
    page = client.get("/runs?column=identifier&column=max").get_data(as_text=True)
    assert re.search(r"<th[^>]*>.*identifier.*</th><th>.*max.*</th></tr>", page)


@pytest.mark.parametrize(
    "url",
    [
        "/api/runs?where=--doubledqn and -lr <",
        "/api/runs?where=-lr %3C%3C 3",
        "/api/runs?where=(--doubledqn",
    ],
)
def test_bad_filter_is_a_400_with_the_caret(client, url):
    data = get_json(client, url, 400)
    assert "^" in data["error"] and "position" in data["error"]
    assert isinstance(data["position"], int)


def test_bad_filter_in_the_page_shows_the_caret_not_a_traceback(client):
    response = client.get("/runs?" + _query(where="--doubledqn and -lr <"))
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    error = re.search(r'<pre class="error" id="error">(.*?)</pre>', text, re.DOTALL)
    assert error is not None
    lines = error.group(1).splitlines()
    assert "at position" in lines[0]
    assert lines[2].strip() == "^"
    assert "Traceback" not in text
    assert 'value="--doubledqn and -lr &lt;"' in text  # the box keeps the text to fix


@pytest.mark.parametrize(
    "url", ["/api/runs?sort=nonsense", "/api/runs?columns=nope", "/api/runs?page=one",
            "/api/runs?per_page=x", "/api/runs?format=xml"]
)
def test_other_bad_parameters_are_400(client, url):
    assert "error" in get_json(client, url, 400)


def test_runs_download_csv_and_json_hold_every_match(client, on_disk):
    expression = "--doubledqn"
    response = client.get("/api/runs?" + _query(where=expression, all=1, format="csv"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][0] == "identifier"
    assert sorted(row[0] for row in rows[1:]) == sorted(r.identifier for r in on_disk.where(expression))
    records = json.loads(client.get("/api/runs?" + _query(where=expression, all=1)).data)
    assert len(records) == len(rows) - 1 and {"path", "identifier"} <= set(records[0])


# --------------------------------------------------------------------------- one run


def test_run_page_shows_what_hermes_show_prints(client, on_disk):
    crashed = next(run for run in on_disk if not run.is_finished)
    path = _rel(crashed)
    response = client.get(f"/run/{path}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert crashed.identifier in text
    for line in crashed.exec_arg_lines:
        assert f"<td>{_escape(line)}</td>" in text
    for name in ("hermes.info", "exec_arguments", crashed.scores_file.name):
        size = (crashed.path_to_experiment / name).stat().st_size
        # A download link, the size for humans with the exact bytes in its title.
        assert re.search(
            rf'download="{re.escape(name)}">{re.escape(name)}</a></td><td class="num" title="{size:,} bytes">',
            text,
        )
    last_stderr = (crashed.path_to_experiment / "stderr.log").read_text().splitlines()[-1]
    assert _escape(last_stderr) in text
    assert 'id="curve-chart"' in text and "/api/curves?runs=" in text

    data = get_json(client, f"/api/run/{path}")
    assert data["identifier"] == crashed.identifier and data["finished"] is False
    assert data["args"] == crashed.exec_arg_lines
    assert data["scores"]["count"] == len(crashed.scores())
    assert data["stderr_tail"][-1] == last_stderr

    table = client.get(f"/api/run/{path}?table=files&format=csv").get_data(as_text=True)
    assert "hermes.info," in table
    assert get_json(client, f"/api/run/{path}?table=nope", 400)


@pytest.mark.parametrize(
    "url",
    [
        "/run/../../etc/passwd",
        "/run/%2e%2e/%2e%2e/etc/passwd",
        "/run/..%2f..%2fetc%2fpasswd",
        "/run/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/run/experiments/../../../../etc/passwd",
        "/run/experiments/train_dqn/./sweep",
        "/run//etc/passwd",
        "/run/experiments%5c..%5c..%5cetc",
        "/api/run/../../etc/passwd",
        "/api/run/%2e%2e/%2e%2e/etc/passwd/result/x.result",
    ],
)
def test_path_traversal_is_refused(client, url):
    response = client.get(url, follow_redirects=True)  # werkzeug merges '//' with a redirect
    assert response.status_code in (400, 404)
    body = response.get_data(as_text=True)
    assert "root:" not in body
    if ".." in url.lower().replace("%2e", "."):
        assert response.status_code == 400
        assert "refused" in body


def test_a_folder_that_is_not_a_run_is_not_found(client, sweep):
    assert client.get("/run/experiments/train_dqn").status_code == 404
    assert client.get("/run/experiments/train_dqn/sweep/nothing_here").status_code == 404
    assert get_json(client, "/api/run/experiments", 404)["error"]


def test_result_series_on_request(client, app, corpus, on_disk):
    pytest.importorskip("torch")
    from pyhermes.result import Result

    run = on_disk[3]
    result = Result("metrics")
    for step in range(50):
        result.store_scalar(1.0 / (step + 1), "loss")
    result["config"] = "not a series"
    result.save(run.path_to_experiment)
    path = _rel(run)
    page = client.get(f"/run/{path}").get_data(as_text=True)
    assert "metrics.result" in page and "plot scalar series" in page
    data = get_json(client, f"/api/run/{path}/result/metrics.result")
    assert data["series"]["loss"]["y"][:2] == [1.0, 0.5]
    assert data["other_keys"] == ["config"]
    assert get_json(client, f"/api/run/{path}/result/other.result", 404)
    assert client.get(f"/api/run/{path}/result/..%2f..%2fhermes.info").status_code == 400
    assert client.get(f"/api/run/{path}/result/hermes.info").status_code == 404


# --------------------------------------------------------------------------- curves


def test_compare_selected_runs_one_line_each(client, on_disk):
    chosen = [run.identifier for run in on_disk[:3]]
    data = get_json(client, "/api/curves?runs=" + ",".join(chosen) + "&window=10")
    assert sorted(line["label"] for line in data["lines"]) == sorted(chosen)
    run = on_disk[0]
    line = next(item for item in data["lines"] if item["label"] == run.identifier)
    scores = run.scores()
    assert line["y"][0] == pytest.approx(scores[0])
    assert line["y"][9] == pytest.approx(scores[:10].mean())
    assert line["high"][9] == pytest.approx(scores[:10].mean() + scores[:10].std())
    page = client.get("/compare?run=" + "&run=".join(chosen)).get_data(as_text=True)
    assert "3 runs selected" in page and page.count('class="run-link"') == 3


def test_compare_without_a_choice_draws_nothing(client):
    text = client.get("/compare").get_data(as_text=True)
    assert 'id="no-runs"' in text and "compare-chart" not in text
    text = client.get("/compare?where=").get_data(as_text=True)  # an empty filter: every run
    assert "compare-chart" in text and f'data-total="{N_RUNS}"' in text


def test_compare_grouped_by_an_arg(client, on_disk):
    data = get_json(client, "/api/curves?" + _query(where="--doubledqn", group_by="-lr", window=5))
    runs = on_disk.where("--doubledqn")
    lrs = sorted({run.exec_args_dict["-lr"] for run in runs})
    assert [line["label"] for line in data["lines"]] == [
        f"-lr {lr} (n={sum(r.exec_args_dict['-lr'] == lr for r in runs)})" for lr in lrs
    ]
    assert sum(line["n"] for line in data["lines"]) == len(runs) == data["matched"]
    first = data["lines"][0]
    group = [run for run in runs if run.exec_args_dict["-lr"] == lrs[0]]
    assert first["y"][0] == pytest.approx(np.mean([run.scores()[0] for run in group]))
    spread = np.std([run.scores()[0] for run in group])
    assert first["high"][0] - first["y"][0] == pytest.approx(spread)

    ci = get_json(client, "/api/curves?" + _query(where="--doubledqn", group_by="-lr", band="ci95"))
    assert ci["band"] == "ci95"
    csv_text = client.get("/api/curves?" + _query(group_by="-lr", format="csv")).get_data(as_text=True)
    assert csv_text.startswith("label,n,episode,mean,low,high")


def test_curves_are_downsampled(client, on_disk):
    data = get_json(client, f"/api/curves?runs={on_disk[0].identifier}&max_points=40&raw=1")
    line = data["lines"][0]
    assert 2 <= len(line["x"]) <= 40 and len(line["raw"]) == len(line["x"])
    assert line["x"][0] == 0 and line["x"][-1] == len(on_disk[0].scores()) - 1
    capped = get_json(client, f"/api/curves?runs={on_disk[0].identifier}&max_points=999999")
    assert len(capped["lines"][0]["x"]) == len(on_disk[0].scores())  # 300 < the cap


def test_bad_curve_parameters_are_400(client):
    assert "-nope" in get_json(client, "/api/curves?group_by=-nope", 400)["error"]
    assert get_json(client, "/api/curves?band=wide", 400)["error"]
    assert get_json(client, "/api/curves?window=0", 400)["error"]
    assert get_json(client, "/api/curves?runs=no_such_run", 400)["error"].startswith("no scores")


# --------------------------------------------------------------------------- SQL


def test_sql_answers_and_downloads(client, on_disk):
    query = "SELECT identifier, final_mean FROM runs ORDER BY final_mean DESC LIMIT 5"
    data = get_json(client, "/api/sql?" + _query(q=query))
    assert data["columns"] == ["identifier", "final_mean"] and data["count"] == 5
    assert [row[0] for row in data["rows"]] == [r.identifier for r in on_disk.sort_by_score()[:5]]
    text = client.get("/api/sql?" + _query(q=query, format="csv")).get_data(as_text=True)
    assert text.splitlines()[0] == "identifier,final_mean" and len(text.splitlines()) == 6
    page = client.get("/sql?" + _query(q=query)).get_data(as_text=True)
    assert 'id="sql-result"' in page and page.count("<tr>") == 6


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM hermes_run",
        "DROP VIEW runs",
        "UPDATE hermes_run SET finished = 0",
        "SELECT 1; DELETE FROM hermes_run",
        "WITH gone AS (SELECT 1) DELETE FROM hermes_run",
        "INSERT INTO hermes_problem (path, reason) VALUES ('x', 'y')",
    ],
)
def test_sql_writes_are_refused(client, corpus, query):
    data = get_json(client, "/api/sql?" + _query(q=query), 400)
    assert "refused" in data["error"] or "error" in data["error"].lower()
    page = client.get("/sql?" + _query(q=query))
    assert page.status_code == 400 and 'id="error"' in page.get_data(as_text=True)
    catalog = Catalog.open(corpus, sync="none")
    assert catalog.count() == N_RUNS
    assert catalog.sql("SELECT COUNT(*) FROM runs WHERE finished").rows[0][0] > 0


def test_sql_examples_are_those_of_the_schema_doc(client):
    from pyhermes.web.examples import EXAMPLE_QUERIES

    text = (REPO / "docs" / "schema.md").read_text()
    documented = re.findall(r"([^\n]+):\n\n```sql\n(.*?)```", text, re.DOTALL)
    assert [(title.replace("`", ""), sql) for title, sql in documented] == list(EXAMPLE_QUERIES)
    page = client.get("/sql").get_data(as_text=True)
    assert page.count('class="example"') == len(EXAMPLE_QUERIES)
    for _, sql in EXAMPLE_QUERIES:
        assert get_json(client, "/api/sql?" + _query(q=sql))["count"] > 0


# --------------------------------------------------------------------------- sync and the rest


def test_refresh_syncs_a_new_run_in_the_background(client, app, sweep):
    before = get_json(client, "/api/runs?per_page=1")["total"]
    write_run(sweep, start=datetime(2030, 1, 1, 12, 0, 0), scores=[1.0, 2.0, 3.0])
    assert get_json(client, "/api/runs?per_page=1")["total"] == before  # not synced yet
    response = client.post("/api/refresh")
    assert json.loads(response.data)["started"] in (True, False)
    app.extensions["hermes"].wait()
    status = get_json(client, "/api/status")
    assert status["running"] is False and status["report"]["added"] == 1
    data = get_json(client, "/api/runs?per_page=1")
    assert data["total"] == before + 1
    assert data["runs"][0]["identifier"].startswith("2030_01_01_12")  # newest first
    assert client.get("/api/refresh").status_code == 405  # a change is a POST


def test_pages_load_only_files_served_by_hermes(client):
    for url in ("/runs", "/compare?where=--doubledqn", "/sql"):
        text = client.get(url).get_data(as_text=True)
        sources = re.findall(r'(?:src|href)="([^"]+)"', text)
        assert sources
        for source in sources:
            assert not re.match(r"(?i)(https?:)?//", source), source
            if source.startswith("/static/"):
                assert client.get(source).status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


def test_other_host_names_are_refused_on_loopback(client, corpus):
    assert client.get("/runs", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/runs", headers={"Host": "[::1]:8765"}).status_code == 200
    refused = client.get("/api/runs", headers={"Host": "attacker.example:8765"})
    assert refused.status_code == 400 and "refused" in json.loads(refused.data)["error"]
    open_app = create_app(corpus, sync="none", host="0.0.0.0")
    assert open_app.test_client().get("/runs", headers={"Host": "lab-server:8765"}).status_code == 200


def test_unknown_pages_are_404(client):
    assert client.get("/nothing").status_code == 404
    assert get_json(client, "/api/nothing", 404)["error"]
    assert client.get("/").status_code == 302


def test_import_pyhermes_does_not_import_the_web_stack():
    code = (
        "import sys, pyhermes, pyhermes.present, pyhermes.storage, pyhermes.index.run_index\n"
        "heavy = [m for m in ('flask', 'werkzeug', 'plotly', 'jinja2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sync_none_needs_an_existing_index(tmp_path):
    from pyhermes.errors import CatalogError

    write_run(tmp_path / "exp", start=datetime(2024, 1, 1))
    with pytest.raises(CatalogError):
        create_app(tmp_path, sync="none")
    with pytest.raises(FileNotFoundError):
        create_app(tmp_path / "missing")


# --------------------------------------------------------------------------- helpers


def _query(**values) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


def _rel(run: Experiment) -> str:
    parts = run.path_to_experiment.parts
    return "/".join(parts[parts.index("experiments") :])


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def test_hermes_serve_command_serves_and_warns_off_loopback(corpus):
    import os
    import urllib.request

    hermes = Path(sys.executable).parent / "hermes"
    process = subprocess.Popen(
        [str(hermes), "serve", str(corpus), "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = process.stdout.readline()
        warning = process.stdout.readline()
        found = re.search(r"http://0\.0\.0\.0:(\d+)/runs", first)
        assert found, first + process.stderr.read()
        port = int(found.group(1))
        assert "anyone who can reach this address" in warning and "no login" in warning
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs?per_page=1", timeout=30) as answer:
            assert answer.status == 200 and "total" in json.loads(answer.read())
    finally:
        # SIGTERM, not SIGINT: a shell without job control starts background jobs
        # (and so this server) with SIGINT ignored.
        process.terminate()
        process.communicate(timeout=30)


def test_missing_browser_skips_outside_ci_and_fails_in_ci(monkeypatch):
    from browser import missing

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        missing("no chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        missing("no chromium")


def test_the_app_on_a_postgresql_index(corpus, on_disk, pg_url):
    app = create_app(corpus, index=pg_url)
    app.extensions["hermes"].wait()
    assert app.extensions["hermes"].status()["error"] is None
    client = app.test_client()
    expression = "--doubledqn and -lr < 0.001"
    data = get_json(client, "/api/runs?" + _query(where=expression, sort="-final_mean"))
    expected = on_disk.where(expression).sort_by_score("final_mean")
    assert data["total"] == len(expected)
    assert [run["identifier"] for run in data["runs"]][:5] == [r.identifier for r in expected[:5]]
    path = data["runs"][0]["path"]
    assert get_json(client, f"/api/run/{path}")["identifier"] == expected[0].identifier
    assert "refused" in get_json(client, "/api/sql?q=DELETE FROM hermes_run", 400)["error"]
    lines = get_json(client, "/api/curves?" + _query(where=expression, group_by="-lr"))["lines"]
    assert sum(line["n"] for line in lines) == len(expected)
