"""The Compare page and ``/api/curves`` in process: curves that agree with the summaries,
every matched run grouped, a seeded sample of single lines, one order, args, add and remove.

Expected values come from the disk (``Experiment.load_all(index=False)``, numpy), not
from the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pytest
from legacy import make_corpus, write_run

from pyhermes import Experiment
from pyhermes.present.compare import BAND_LINES, DEFAULT_GROUPS, MAX_LINES, POINT_BUDGET
from pyhermes.present.curve_data import downsample_extremes
from pyhermes.summary import summarize

pytest.importorskip("flask")
pytest.importorskip("plotly")

from pyhermes.web import create_app  # noqa: E402

N_RUNS = 130  # more than MAX_LINES: one line per run must sample


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare") / "runs"
    make_corpus(root, N_RUNS, seed=11, scores_per_run=400)
    # Odd runs of another experiment: a group of 3 where one run has a NaN every 7th score.
    odd = root / "experiments" / "train_dqn" / "odd"
    start = datetime(2025, 1, 2, 3, 4, 5)
    rng = np.random.default_rng(2)
    for job in range(3):
        scores = rng.normal(150.0, 20.0, size=300)
        if job == 1:
            scores[::7] = np.nan
        write_run(
            odd,
            start=start + timedelta(minutes=job),
            job_idx=job,
            exec_args=["train", "-lr 0.01", f"-seed {job}"],
            scores=[float(value) for value in scores],
        )
    return root


@pytest.fixture(scope="module")
def sweep(corpus: Path):
    return Experiment.load_all(corpus / "experiments" / "train_dqn" / "sweep", index=False)


@pytest.fixture(scope="module")
def odd(corpus: Path):
    return Experiment.load_all(corpus / "experiments" / "train_dqn" / "odd", index=False)


@pytest.fixture(scope="module")
def client(corpus: Path):
    application = create_app(corpus)
    application.extensions["hermes"].wait()
    yield application.test_client()
    from pyhermes.index.store.engine import dispose_engines

    dispose_engines()


def get_json(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return json.loads(response.get_data(as_text=True))


def odd_filter(odd) -> str:
    return "identifier in (" + ", ".join(f'"{run.identifier}"' for run in odd) + ")"


# --------------------------------------------------------------------------- NaN scores


def test_a_run_with_nans_has_a_line_ending_at_its_final_mean(client, odd):
    nan_run = next(run for run in odd if np.isnan(run.scores()).any())
    data = get_json(client, f"/api/curves?runs={nan_run.identifier}")
    (line,) = data["lines"]
    final_mean = summarize(nan_run.scores()).final_mean
    assert line["final"] == pytest.approx(final_mean, rel=1e-9)
    assert line["y"][-1] == pytest.approx(final_mean, rel=1e-9)
    assert all(value is not None for value in line["y"][1:])  # only the first score is NaN
    assert line["y"][0] is None and math.isnan(nan_run.scores()[0])


def test_a_group_with_a_nan_run_has_values_for_every_episode(client, odd):
    data = get_json(client, "/api/curves?where=" + odd_filter(odd) + "&group_by=train&window=10")
    (line,) = data["lines"]
    assert line["n"] == 3 and len(line["y"]) == 300
    assert all(value is not None for value in line["y"])
    smoothed = []
    for run in odd:
        scores = run.scores()
        smoothed.append([np.nanmean(scores[max(0, i - 9) : i + 1]) if (~np.isnan(scores[max(0, i - 9) : i + 1])).any() else np.nan for i in range(300)])
    expected = np.nanmean(np.array(smoothed), axis=0)
    np.testing.assert_allclose(line["y"], expected, rtol=1e-9)


# --------------------------------------------------------------------------- every match


def test_grouped_curves_read_every_matched_run(client, sweep, odd):
    data = get_json(client, "/api/curves?where=&group_by=-lr")
    total = len(sweep) + len(odd)
    assert total > MAX_LINES
    assert data["matched"] == data["runs"] == total and not data["truncated"]
    assert sum(line["n"] for line in data["lines"]) == total
    lrs = sorted({run.exec_args_dict["-lr"] for run in [*sweep, *odd]})
    assert len(data["lines"]) == len(lrs)
    members = data["members"]
    assert len(members) == total
    for run in [*sweep, *odd]:
        line = data["lines"][members[run.identifier]]
        assert line["args"]["-lr"] == str(run.exec_args_dict["-lr"])


def test_single_lines_are_a_seeded_sample_not_the_oldest(client, sweep, odd):
    url = "/api/curves?where=&window=20"
    data = get_json(client, url)
    assert data["truncated"] and data["sampled"] == MAX_LINES == len(data["lines"])
    assert data["matched"] == len(sweep) + len(odd)
    drawn = [line["identifier"] for line in data["lines"]]
    assert get_json(client, url)["lines"][0]["identifier"] == drawn[0]
    assert [line["identifier"] for line in get_json(client, url)["lines"]] == drawn  # reproducible
    oldest = sorted([*sweep, *odd], key=lambda run: run.identifier)[:MAX_LINES]
    assert set(drawn) != {run.identifier for run in oldest}
    other = get_json(client, "/api/curves?where=&window=20&sort=-lr")  # another query, another sample
    assert {line["identifier"] for line in other["lines"]} != set(drawn)
    assert data["bands_hidden"] == (MAX_LINES > BAND_LINES)
    numbers = sum(len(line["x"]) + len(line["y"]) for line in data["lines"])
    assert numbers <= POINT_BUDGET


def test_long_curves_are_downsampled_and_the_csv_keeps_every_episode(client, sweep):
    runs = sweep[:3]
    url = "/api/curves?runs=" + ",".join(run.identifier for run in runs) + "&max_points=50&window=5"
    data = get_json(client, url)
    for line in data["lines"]:
        assert len(line["x"]) <= 50 and line["x"][0] == 0 and line["x"][-1] == 399
        assert line["episodes"] == 400
    text = client.get(url + "&format=csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["label", "n", "episode", "mean", "low", "high"]
    assert len(rows) - 1 == 3 * 400  # every episode of every line
    first = runs[0]
    mine = [row for row in rows[1:] if row[0] == first.identifier]
    scores = first.scores()
    assert float(mine[7][3]) == pytest.approx(scores[3:8].mean())


def test_downsampling_keeps_a_spike():
    values = np.zeros(10_000)
    values[4321] = 100.0
    values[777] = -50.0
    kept = downsample_extremes(values, 200)
    assert len(kept) <= 200 and kept[0] == 0 and kept[-1] == 9_999
    assert 4321 in kept and 777 in kept
    assert np.all(np.diff(kept) > 0)


# --------------------------------------------------------------------------- the page


def test_compare_all_matching_groups_by_the_differing_args_except_seeds(client, sweep):
    text = client.get("/compare?where=--doubledqn").get_data(as_text=True)
    box = re.search(r'id="group-by" value="([^"]*)"', text).group(1)
    keys = box.split(",")
    assert keys and not {"-seed", "--seed", "seed"} & set(keys)
    runs = sweep.where("--doubledqn")
    varying = {
        key for key in {k for run in runs for k in run.exec_args_dict}
        if len({repr(run.exec_args_dict.get(key)) for run in runs}) > 1
    } - {"-seed"}

    def groups(chosen: list[str]) -> int:
        return len({tuple(repr(run.exec_args_dict.get(key)) for key in chosen) for run in runs})

    assert set(keys) <= varying
    if groups(sorted(varying)) <= DEFAULT_GROUPS:
        assert set(keys) == varying
    else:  # as many of them as keep the lines few: no other key would split without too many
        assert groups(keys) <= DEFAULT_GROUPS
        for key in varying - set(keys):
            assert groups([*keys, key]) in (groups(keys), *range(DEFAULT_GROUPS + 1, len(runs) + 1))
    url = re.search(r'id="compare-chart" data-url="([^"]*)"', text).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(url).query)["group_by"] == [box]
    # an explicit empty grouping is one line per run; the box says so
    text = client.get("/compare?where=--doubledqn&group_by=").get_data(as_text=True)
    assert 'id="group-by" value=""' in text and "group_by" not in re.search(
        r'id="compare-chart" data-url="([^"]*)"', text).group(1)
    assert 'id="ungrouped"' in text


def test_lines_are_named_by_the_args_in_which_they_differ(client, odd):
    data = get_json(client, "/api/curves?where=" + odd_filter(odd))
    assert data["differing"] == ["-seed"]
    for line in data["lines"]:
        seed = line["args"]["-seed"]
        assert line["name"] == f"-seed {seed} · {line['identifier']}"
        assert line["args"]["-lr"] == "0.01" and line["args"]["train"] is True
    grouped = get_json(client, "/api/curves?where=" + odd_filter(odd) + "&group_by=-lr")
    assert grouped["lines"][0]["args"]["-seed"] is None  # its runs differ there
    assert grouped["lines"][0]["name"] == "-lr 0.01 (n=3)"


def test_columns_are_kept_and_the_table_sorted_best_first(client, sweep):
    chosen = [run.identifier for run in sweep[:4]]
    url = "/compare?runs=" + ",".join(chosen) + "&columns=identifier,-lr,final_mean"
    text = client.get(url).get_data(as_text=True)
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", text.split('id="runs"', 1)[1].split("</thead>")[0])
    assert headers == ["identifier", "-lr", "final_mean"]
    assert 'name="columns" value="identifier,-lr,final_mean"' in text  # kept by Draw
    finals = [float(value) for value in re.findall(r'<td class="num">([-0-9.e]+)</td></tr>', text)]
    assert len(finals) == 4 and finals == sorted(finals, reverse=True)


def test_runs_are_added_and_removed_in_the_page(client, sweep):
    first, second, third = (run.identifier for run in sweep[:3])
    text = client.get(f"/compare?runs={first},{second}&window=7").get_data(as_text=True)
    removals = re.findall(r'<a href="([^"]*)" class="remove-run"', text)
    assert len(removals) == 2
    target = removals[0].replace("&amp;", "&")
    assert parse_qs(urlsplit(target).query)["runs"] == [second]
    assert parse_qs(urlsplit(target).query)["window"] == ["7"]
    added = client.get(f"/compare?runs={first}&add={third[:-3]}&window=7")
    assert added.status_code == 302
    query = parse_qs(urlsplit(added.headers["Location"]).query)
    assert query["runs"] == [f"{first},{third}"] and query["window"] == ["7"]
    by_filter = client.get(f"/compare?runs={first}&add=-lr >= 0")
    wanted = {run.identifier for run in sweep if run.exec_args_dict["-lr"] >= 0}
    location = parse_qs(urlsplit(by_filter.headers["Location"]).query)["runs"][0].split(",")
    assert location[0] == first and len(location) == min(MAX_LINES, len(wanted | {first}))
    bad = client.get(f"/compare?runs={first}&add=-lr <")
    assert bad.status_code == 400 and 'id="error"' in bad.get_data(as_text=True)


def test_runs_that_differ_only_by_seed_make_one_group(client, odd):
    where = odd_filter(odd)
    text = client.get("/compare", query_string={"where": where}).get_data(as_text=True)
    assert 'id="group-by" value="*"' in text
    data = get_json(client, "/api/curves?" + urlencode({"where": where, "group_by": "*"}))
    (line,) = data["lines"]
    assert line["label"] == "all runs (n=3)" and data["group_by"] == ["*"]


def test_compare_reads_on_both_backends(backend, tmp_path):
    """The compare's SQL (every match, its args, the args that vary) on SQLite and PostgreSQL."""
    root = tmp_path / "runs"
    make_corpus(root, 40, seed=3, scores_per_run=50)
    runs = Experiment.load_all(root / "experiments" / "train_dqn" / "sweep", index=False)
    application = create_app(root)
    application.extensions["hermes"].wait()
    client = application.test_client()
    grouped = get_json(client, "/api/curves?where=--doubledqn&group_by=-lr&window=5")
    with_flag = runs.where("--doubledqn")
    assert grouped["matched"] == len(with_flag) == sum(line["n"] for line in grouped["lines"])
    assert set(grouped["members"]) == {run.identifier for run in with_flag}
    single = get_json(client, "/api/curves?where=&window=5")
    assert single["matched"] == 40 and len(single["lines"]) == 40
    for line in single["lines"]:
        run = next(item for item in runs if item.identifier == line["identifier"])
        assert line["args"]["-lr"] == str(run.exec_args_dict["-lr"])
    text = client.get("/compare?where=").get_data(as_text=True)
    keys = re.search(r'id="group-by" value="([^"]*)"', text).group(1).split(",")
    assert "-lr" in keys and "-seed" not in keys


def test_the_runs_page_sends_its_chosen_columns_to_compare(client):
    import html
    import re

    text = client.get("/runs?columns=identifier,final_mean,-lr&where=--doubledqn").get_data(as_text=True)
    form = text.split('id="select-form"', 1)[1].split("</div>", 1)[0]
    assert 'name="columns" value="identifier,final_mean,-lr"' in form  # Compare selected keeps them
    link = html.unescape(re.search(r'href="([^"]+)" id="compare-all"', text).group(1))
    assert "columns=identifier%2Cfinal_mean%2C-lr" in link and "where=--doubledqn" in link
    page = client.get(link).get_data(as_text=True)
    header = page.split('id="runs"', 1)[1].split("</thead>", 1)[0]
    assert re.findall(r"<th[^>]*>(?:<[^>]+>)*([^<]+)", header)[-3:] == ["identifier", "final_mean", "-lr"]
    # Without a choice, nothing is sent: the Compare page shows its default columns.
    plain = client.get("/runs").get_data(as_text=True)
    assert 'name="columns"' not in plain.split('id="select-form"', 1)[1].split("</div>", 1)[0]
