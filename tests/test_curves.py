"""Tests of pyhermes.curves: grouping runs and plotting the mean smoothed curve of each group."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyhermes.curves import group_curve, group_label, group_runs, plot_grouped_scores
from pyhermes.plot import smoothen
from pyhermes.storage import Experiment, ExperimentList

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

plt = pytest.importorskip("matplotlib.pyplot")
from matplotlib.collections import PolyCollection  # noqa: E402


@dataclass
class Run:
    """A stand-in for an Experiment: scores, arguments and an identifier."""

    values: list[float]
    exec_args_dict: dict[str, Any] = field(default_factory=dict)
    identifier: str = "run"

    def scores(self) -> np.ndarray:
        return np.asarray(self.values, dtype=np.float64)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _legend(fig: Any) -> list[str]:
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def _make_run(tmp_path: Path, args: list[str], scores: list[float]) -> Experiment:
    run = Experiment.create(
        tmp_path, "train", "sweep", exec_args=args, commit_hash="abcdef0123", index=False
    )
    if scores:
        run.append_scores(*scores)
    run.finish()
    return run


# --------------------------------------------------------------------------- grouping


def test_group_runs_orders_groups_by_value_with_missing_last() -> None:
    runs = [
        Run([1], {"-lr": 0.01}, "a"),
        Run([1], {}, "b"),
        Run([1], {"-lr": 0.001}, "c"),
        Run([1], {"-lr": 0.1}, "d"),
        Run([1], {"-lr": 0.001}, "e"),
        Run([1], {"-lr": 1e-4}, "f"),
    ]
    groups = group_runs(runs, "-lr")
    assert [values for values, _ in groups] == [(1e-4,), (0.001,), (0.01,), (0.1,), (None,)]
    assert [[run.identifier for run in members] for _, members in groups] == [
        ["f"],
        ["c", "e"],
        ["a"],
        ["d"],
        ["b"],
    ]


def test_group_runs_none_is_one_group_and_several_keys_forms() -> None:
    runs = [
        Run([1], {"-lr": 0.1, "-gamma": 0.9}, "a"),
        Run([1], {"-lr": 0.1, "-gamma": 0.99}, "b"),
        Run([1], {"-lr": 0.01, "-gamma": 0.99}, "c"),
    ]
    assert group_runs(runs, None) == [((), runs)]
    as_text = group_runs(runs, "-lr, -gamma")
    assert as_text == group_runs(runs, ["-lr", "-gamma"])
    assert [values for values, _ in as_text] == [(0.01, 0.99), (0.1, 0.9), (0.1, 0.99)]
    assert group_runs([], "-lr") == []


def test_group_runs_value_kinds() -> None:
    runs = [
        Run([1], {"-h": [128, 128], "--ddqn": True, "-opt": "sgd"}, "a"),
        Run([1], {"-h": [64, 64], "-opt": "adam"}, "b"),
        Run([1], {"-h": [64, 64], "--ddqn": True, "-opt": "adam"}, "c"),
        Run([1], {"-h": 1, "-opt": 1}, "d"),
        Run([1], {"-h": 1.0, "-opt": True}, "e"),
    ]
    hidden = group_runs(runs, "-h")
    # numbers (1 and 1.0 are equal) before lists; lists compared element by element
    assert [values for values, _ in hidden] == [(1,), ((64, 64),), ((128, 128),)]
    assert [len(members) for _, members in hidden] == [2, 2, 1]
    flags = group_runs(runs, "--ddqn")
    assert [values for values, _ in flags] == [(True,), (None,)]
    # the flag value True is not the number 1; numbers, booleans, strings
    opts = group_runs(runs, "-opt")
    assert [values for values, _ in opts] == [(1,), (True,), ("adam",), ("sgd",)]


def test_group_runs_unknown_key_and_bad_group_by() -> None:
    runs = [Run([1], {"-lr": 0.1})]
    with pytest.raises(ValueError, match="'lr'"):
        group_runs(runs, "lr")
    assert group_runs(runs, []) == group_runs(runs, None)
    for bad in ("", " , ", ["-lr", ""], "-lr,"):
        with pytest.raises(ValueError, match="group_by"):
            group_runs(runs, bad)


def test_group_label() -> None:
    assert group_label("-lr", (0.001,), 5) == "-lr 0.001 (n=5)"
    assert group_label("-lr,-gamma", (0.001, 0.99), 3) == "-lr 0.001, -gamma 0.99 (n=3)"
    assert group_label(None, (), 12) == "all runs (n=12)"
    assert group_label(["-lr", "-h"], (None, (64, 64))) == "-lr \u2013, -h 64 64"
    with pytest.raises(ValueError):
        group_label("-lr", (1, 2))


# --------------------------------------------------------------------------- curves


def test_group_curve_is_the_mean_of_smoothed_runs() -> None:
    rng = np.random.default_rng(0)
    runs = [rng.normal(size=30) for _ in range(3)]
    curve = group_curve(runs, window=4)
    smoothed = np.stack([smoothen(run, 4)[0] for run in runs])
    np.testing.assert_allclose(curve.mean, smoothed.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(curve.std, smoothed.std(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(curve.sample_std, smoothed.std(axis=0, ddof=1), rtol=1e-9)
    np.testing.assert_array_equal(curve.counts, np.full(30, 3))


def test_group_curve_different_lengths_rule() -> None:
    a, b, c, d = np.arange(10.0), np.arange(6.0) * 2, np.ones(3), np.full(8, 5.0)
    # default min_runs: half the runs rounded up (2 of 4) -> length of the 2nd longest run
    curve = group_curve([a, b, c, d], window=1)
    assert len(curve.mean) == 8
    np.testing.assert_array_equal(curve.counts, [4, 4, 4, 3, 3, 3, 2, 2])
    expected = [
        np.mean([a[i], b[i], c[i], d[i]]) if i < 3 else np.mean([a[i], b[i], d[i]])
        for i in range(6)
    ] + [np.mean([a[6], d[6]]), np.mean([a[7], d[7]])]
    np.testing.assert_allclose(curve.mean, expected)
    # min_runs=1: up to the longest run; larger than the group: all runs required
    assert len(group_curve([a, b, c, d], window=1, min_runs=1).mean) == 10
    assert len(group_curve([a, b, c, d], window=1, min_runs=9).mean) == 3
    # 1 or 2 runs: one run suffices; 3 runs: two are needed
    assert len(group_curve([a, c], window=1).mean) == 10
    assert len(group_curve([a, b, c], window=1).mean) == 6


def test_group_curve_single_run_and_nan_scores() -> None:
    curve = group_curve([np.array([1.0, 3.0, 5.0])], window=2)
    np.testing.assert_allclose(curve.mean, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(curve.std, [0.0, 0.0, 0.0])
    assert np.isnan(curve.sample_std).all()
    # a NaN score spoils the windows holding it, for the group too (not skipped)
    nan_curve = group_curve([np.array([1.0, np.nan, 1.0, 1.0]), np.ones(4)], window=2)
    np.testing.assert_array_equal(np.isnan(nan_curve.mean), [False, True, True, False])


# --------------------------------------------------------------------------- plots


def test_plot_lines_labels_and_data_with_real_experiments(tmp_path: Path) -> None:
    specs = [
        (["-lr 0.001", "-seed 1"], [1.0, 2.0, 3.0, 4.0, 5.0]),
        (["-lr 0.001", "-seed 2"], [5.0, 4.0, 3.0, 2.0, 1.0]),
        (["-lr 0.01", "-seed 1"], [0.0, 10.0, 0.0, 10.0, 0.0]),
        (["-lr 0.01", "-seed 2"], []),  # no scores: skipped, not counted
    ]
    runs = ExperimentList([_make_run(tmp_path, args, scores) for args, scores in specs])
    fig = plot_grouped_scores(runs, group_by="-lr", window=2, band=None)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 2
    assert _legend(fig) == ["-lr 0.001 (n=2)", "-lr 0.01 (n=1)"]
    expected = (smoothen(specs[0][1], 2)[0] + smoothen(specs[1][1], 2)[0]) / 2
    np.testing.assert_allclose(lines[0].get_ydata(), expected)
    np.testing.assert_array_equal(lines[0].get_xdata(), np.arange(5))
    np.testing.assert_allclose(lines[1].get_ydata(), smoothen(specs[2][1], 2)[0])
    assert ax.get_xlabel() == "episode"
    assert ax.get_ylabel() == "score (mean of last 2)"
    assert len(ax.collections) == 0

    # the ExperimentList method delegates here
    fig2 = runs.plot_scores(group_by="-lr", window=2, band=None)
    assert [t.get_text() for t in fig2.axes[0].get_legend().get_texts()] == _legend(fig)


def test_plot_all_runs_and_several_keys() -> None:
    runs = [
        Run([1.0, 2.0], {"-lr": 0.001, "-gamma": 0.99}),
        Run([3.0, 4.0], {"-lr": 0.001, "-gamma": 0.9}),
        Run([5.0, 6.0], {"-lr": 0.001, "-gamma": 0.99}),
    ]
    fig = plot_grouped_scores(runs, window=1)
    assert _legend(fig) == ["all runs (n=3)"]
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [3.0, 4.0])
    fig = plot_grouped_scores(runs, group_by=["-lr", "-gamma"], window=1)
    assert _legend(fig) == ["-lr 0.001, -gamma 0.9 (n=1)", "-lr 0.001, -gamma 0.99 (n=2)"]


def test_plot_different_lengths_follow_the_rule() -> None:
    runs = [Run(list(np.arange(float(n))), {"-lr": 0.1}) for n in (10, 6, 3)]
    ax = plot_grouped_scores(runs, group_by="-lr", window=1, band=None).axes[0]
    (line,) = ax.get_lines()
    # 3 runs -> at least 2 must reach an episode -> length of the 2nd longest run
    np.testing.assert_allclose(line.get_ydata(), np.arange(6.0))
    ax = plot_grouped_scores(runs, window=1, band=None, min_runs=1).axes[0]
    assert len(ax.get_lines()[0].get_ydata()) == 10


def test_bands_std_and_ci95() -> None:
    runs = [
        Run([0.0, 0.0, 0.0, 0.0], {"-lr": 0.1}),
        Run([2.0, 2.0, 2.0], {"-lr": 0.1}),
        Run([1.0, 1.0], {"-lr": 0.2}),  # alone in its group
    ]
    fig = plot_grouped_scores(runs, group_by="-lr", window=1, band="std", min_runs=1)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2
    assert len(ax.collections) == 2
    assert all(isinstance(c, PolyCollection) for c in ax.collections)
    vertices = np.concatenate([path.vertices for path in ax.collections[0].get_paths()])
    assert vertices[:, 1].min() == pytest.approx(0.0)  # mean 1 - std 1
    assert vertices[:, 1].max() == pytest.approx(2.0)

    fig = plot_grouped_scores(runs, group_by="-lr", window=1, band="ci95", min_runs=1)
    ax = fig.axes[0]
    # no band for the single-run group
    assert len(ax.collections) == 1
    half = 1.96 * np.std([0.0, 2.0], ddof=1) / np.sqrt(2)
    paths = ax.collections[0].get_paths()
    vertices = np.concatenate([path.vertices for path in paths])
    # the band covers episodes 0..2 only (episode 3 has one run)
    assert vertices[:, 0].max() == pytest.approx(2.0)
    assert vertices[:, 1].min() == pytest.approx(1.0 - half)
    assert vertices[:, 1].max() == pytest.approx(1.0 + half)

    fig = plot_grouped_scores(runs, group_by="-lr", window=1, band=None)
    assert len(fig.axes[0].collections) == 0


def test_draws_into_given_axes_and_saves_png(tmp_path: Path) -> None:
    import matplotlib.image

    runs = [Run([1.0, 2.0, 3.0], {"-lr": 0.1}), Run([2.0, 2.0], {"-lr": 0.2})]
    out = tmp_path / "curves.png"
    fig = plot_grouped_scores(runs, group_by="-lr", window=2, path=out, figsize=(4, 3), dpi=50)
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.image.imread(out).shape[:2] == (150, 200)
    assert tuple(fig.get_size_inches()) == (4, 3)

    default_out = tmp_path / "default.png"
    plot_grouped_scores(runs, path=default_out)
    assert matplotlib.image.imread(default_out).shape[:2] == (600, 1000)

    own_fig, own_ax = plt.subplots(figsize=(3, 2), dpi=40)
    assert plot_grouped_scores(runs, group_by="-lr", ax=own_ax) is own_fig
    assert len(own_ax.get_lines()) == 2


def test_value_errors() -> None:
    runs = [Run([1.0], {"-lr": 0.1})]
    with pytest.raises(ValueError, match="'std', 'ci95' or None"):
        plot_grouped_scores(runs, band="sem")
    with pytest.raises(ValueError, match="window"):
        plot_grouped_scores(runs, window=0)
    with pytest.raises(ValueError, match="min_runs"):
        plot_grouped_scores(runs, min_runs=0)
    with pytest.raises(ValueError, match="no scores to plot"):
        plot_grouped_scores([Run([], {"-lr": 0.1}), Run([], {})])
    with pytest.raises(ValueError, match="no scores to plot"):
        plot_grouped_scores([])
    with pytest.raises(ValueError, match="'-gamma'"):
        plot_grouped_scores(runs, group_by="-gamma")
    with pytest.raises(TypeError):
        plot_grouped_scores(runs, window=2.5)  # type: ignore[arg-type]
