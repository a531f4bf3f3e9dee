"""Notebook views: _repr_html_ of runs, lists and query results; the ScoreSummary repr; ExperimentList.plot."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from legacy import write_run

from pyhermes import Catalog, Experiment
from pyhermes.summary import ScoreSummary, summarize


@pytest.fixture(scope="module")
def sweep(read_only_corpus: Path) -> Path:
    """The session's generated corpus (300 runs), read only."""
    return read_only_corpus


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's index of ``sweep``, outside the shared corpus."""
    return tmp_path_factory.mktemp("notebook-index") / "index.sqlite"


def _body_rows(html: str) -> int:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return body.count("<tr>")


def test_experiment_html_shows_fields_args_and_scores(sweep, index):
    run = Experiment.load_all(sweep, index=index)[0]
    html = run._repr_html_()
    assert run.identifier in html
    for line in run.exec_arg_lines:
        assert f"<td>{line}</td>" in html
    final = run.score_summary.final_mean
    assert f'<td class="num">{final:.6g}</td>' in html


def test_experiment_list_html_is_truncated_with_a_count(sweep, index):
    runs = Experiment.load_all(sweep, index=index)
    html = runs._repr_html_()
    assert _body_rows(html) == 20
    assert len(runs) > 20
    assert f"{len(runs):,} runs; the newest 20 shown, {len(runs) - 20:,} more" in html
    for column in ("identifier", "start_time", "-lr", "--doubledqn", "final_mean"):
        assert f"<th>{column}</th>" in html
    small = type(runs)(runs[:3])
    assert _body_rows(small._repr_html_()) == 3 and "3 runs<" in small._repr_html_()
    assert "0 runs" in type(runs)([])._repr_html_()


def test_values_are_escaped(tmp_path):
    write_run(
        tmp_path / "exp",
        start=datetime(2024, 1, 1),
        exec_args=("-name <script>alert(1)</script>", "--flag"),
        scores=[1.0, 2.0],
    )
    runs = Experiment.load_all(tmp_path / "exp", index=False)
    for html in (runs._repr_html_(), runs[0]._repr_html_()):
        assert "<script>" not in html and "&lt;script&gt;" in html


def test_query_result_html(sweep, index):
    Experiment.load_all(sweep, index=index)
    catalog = Catalog.open(sweep, index=index, sync="none")
    result = catalog.sql("SELECT identifier, final_mean FROM runs ORDER BY identifier LIMIT 40")
    html = result._repr_html_()
    assert _body_rows(html) == 40 and "40 rows<" in html  # all shown: no "first 50" note
    long = catalog.sql("SELECT run_id, key FROM run_args")
    assert _body_rows(long._repr_html_()) == 50
    assert f"{len(long.rows):,} rows; the first 50 shown" in long._repr_html_()
    assert re.search(r"<th>identifier</th><th>final_mean</th>", html)


def test_score_summary_repr_is_readable():
    scores = np.concatenate([np.linspace(-100, 100, 150), [250.0], np.full(49, 90.0)])
    summary = summarize(scores)
    text = repr(summary)
    assert text.startswith("ScoreSummary(count=200, final_mean=")
    assert f"final_mean={summary.final_mean:.6g}" in text
    assert "max=250 at 150" in text
    assert "\n" not in text and len(text) < 200
    assert repr(ScoreSummary(count=0)) == "ScoreSummary(count=0, no scores)"
    assert "every score is NaN" in repr(summarize(np.array([np.nan, np.nan])))


def test_plot_draws_one_line_per_group(sweep, index, plt):
    runs = Experiment.load_all(sweep, index=index)
    figures_before = plt.get_fignums()
    figure = runs.plot(group_by="-lr", band="std", window=10)
    assert plt.get_fignums() == figures_before  # not a pyplot figure: shown once in a notebook
    axes = figure.axes[0]
    lrs = sorted({run.exec_args_dict["-lr"] for run in runs})
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == [
        f"-lr {lr} (n={sum(run.exec_args_dict['-lr'] == lr for run in runs)})" for lr in lrs
    ]
    first_group = [run for run in runs if run.exec_args_dict["-lr"] == lrs[0]]
    line = axes.get_lines()[0]
    assert line.get_ydata()[0] == pytest.approx(np.mean([run.scores()[0] for run in first_group]))
    assert len(axes.collections) == len(lrs)  # one std band per group
    assert len(runs.plot(band=None).axes[0].collections) == 0


def test_plot_needs_scores(tmp_path, plt):
    write_run(tmp_path / "exp", start=datetime(2024, 1, 1))
    write_run(tmp_path / "exp", start=datetime(2024, 1, 1) + timedelta(seconds=1))
    with pytest.raises(ValueError, match="no scores to plot"):
        Experiment.load_all(tmp_path / "exp", index=False).plot()


def test_a_loaded_list_shows_its_newest_runs_first_like_the_runs_page(sweep, index):
    runs = Experiment.load_all(sweep, index=index)
    html = runs._repr_html_()
    assert f"the newest 20 shown, {len(runs) - 20:,} more" in html
    newest = sorted(runs, key=lambda run: run.start_time, reverse=True)[:20]
    shown = re.findall(r'<tr><td>([^<]+)</td>', html.split("<tbody>", 1)[1])
    assert shown == [run.identifier for run in newest]
    # A sorted list keeps its own order; a hand-built list too.
    best = runs.sort_by_score() if hasattr(runs, "sort_by_score") else None
    hand = type(runs)(list(runs)[:3])
    assert re.findall(r'<tr><td>([^<]+)</td>', hand._repr_html_()) == [r.identifier for r in hand]
    assert "newest" not in hand._repr_html_()
    if best is not None:
        assert "newest" not in best._repr_html_()
