"""Tests of pyhermes.curves: grouping runs and plotting the mean smoothed curve of each group."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyhermes.curves import (
    GroupAccumulator,
    group_curve,
    group_label,
    group_runs,
    grouped_curves,
    nan_smoothen,
    nan_trailing_mean,
    plot_grouped_scores,
)
from pyhermes.plot import smoothen
from pyhermes.storage import Experiment, ExperimentList
from pyhermes.summary import SUMMARY_WINDOW, summarize

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
    # a NaN score is skipped, as the score summaries skip it: the group has a value everywhere
    nan_curve = group_curve([np.array([1.0, np.nan, 3.0, 1.0]), np.ones(4)], window=2)
    np.testing.assert_allclose(nan_curve.mean, [1.0, 1.0, 2.0, 1.5])
    np.testing.assert_array_equal(nan_curve.counts, [2, 2, 2, 2])
    # a window of NaNs only has no value: that run does not count there
    gap = group_curve([np.array([np.nan, np.nan, 4.0]), np.array([2.0, 2.0, 2.0])], window=1)
    np.testing.assert_allclose(gap.mean, [2.0, 2.0, 3.0])
    np.testing.assert_array_equal(gap.counts, [1, 1, 2])


def _nan_means(values: np.ndarray, window: int) -> np.ndarray:
    """The reference: numpy's nanmean of every trailing window, NaN for a window of NaNs."""
    out = np.full(values.size, np.nan)
    for i in range(values.size):
        part = values[max(0, i - window + 1) : i + 1]
        if (~np.isnan(part)).any():
            out[i] = np.nanmean(part)
    return out


@pytest.mark.parametrize("window", [1, 3, 7, 100, 5000])
def test_nan_trailing_mean_skips_nans_like_the_summaries(window: int) -> None:
    rng = np.random.default_rng(window)
    values = rng.normal(150.0, 40.0, size=1234)
    values[::7] = np.nan
    values[200:230] = np.nan
    means = nan_trailing_mean(values, window)
    np.testing.assert_allclose(means, _nan_means(values, window), rtol=1e-11, equal_nan=True)
    mean, std = nan_smoothen(values, window)
    np.testing.assert_allclose(mean, _nan_means(values, window), rtol=1e-11, equal_nan=True)
    with warnings.catch_warnings():  # numpy warns about the windows of NaNs only
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = np.array(
            [np.nanstd(values[max(0, i - window + 1) : i + 1]) for i in range(values.size)]
        )
    np.testing.assert_allclose(std, reference, rtol=1e-6, atol=1e-4, equal_nan=True)  # of a spread ~40
    # without NaNs the smoothing is plot.smoothen's
    clean = rng.normal(size=500)
    np.testing.assert_allclose(nan_trailing_mean(clean, window), smoothen(clean, window)[0], rtol=1e-9, atol=1e-12)


def test_the_smoothed_line_ends_at_the_final_mean() -> None:
    values = np.random.default_rng(3).normal(150.0, 30.0, size=1000)
    values[::7] = np.nan  # a NaN every 7th score
    final_mean = summarize(values).final_mean
    assert final_mean is not None
    assert nan_trailing_mean(values, SUMMARY_WINDOW)[-1] == pytest.approx(final_mean, rel=1e-12)
    assert not np.isnan(nan_trailing_mean(values, 10)[1:]).any()  # the first score is NaN


def test_a_group_with_one_nan_run_has_values_for_every_episode() -> None:
    rng = np.random.default_rng(4)
    runs = [rng.normal(size=300) for _ in range(3)]
    runs[1][::7] = np.nan
    curve = group_curve(runs, window=20)
    assert len(curve.mean) == 300 and not np.isnan(curve.mean).any()
    smoothed = np.stack([_nan_means(run, 20) for run in runs])
    np.testing.assert_allclose(curve.mean, np.nanmean(smoothed, axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(curve.std, np.nanstd(smoothed, axis=0), rtol=1e-7, atol=1e-12)
    assert curve.counts[0] == 2 and (curve.counts[1:] == 3).all()  # run 1's first score is NaN


def test_infinite_scores_are_not_skipped() -> None:
    values = np.array([1.0, 2.0, np.inf, 4.0, 5.0, 6.0])
    means = nan_trailing_mean(values, 2)
    assert np.isfinite(means[:2]).all() and not np.isfinite(means[2:4]).any()
    assert means[4:] == pytest.approx([4.5, 5.5])


def test_the_accumulator_streams_runs_of_any_length() -> None:
    rng = np.random.default_rng(5)
    runs = [rng.normal(size=size) for size in (50, 400, 10, 250)]
    accumulator = GroupAccumulator(window=5)
    assert not accumulator.add(np.empty(0))  # no scores: nothing added
    for run in runs:
        assert accumulator.add(run)
    streamed = accumulator.curve(min_runs=1)
    at_once = group_curve(runs, window=5, min_runs=1)
    assert accumulator.runs == 4 and len(streamed.mean) == 400
    for mine, theirs in zip(streamed, at_once, strict=True):
        np.testing.assert_allclose(mine, theirs, equal_nan=True)
    padded = np.full((4, 400), np.nan)
    for row, run in enumerate(runs):
        padded[row, : run.size] = smoothen(run, 5)[0]
    np.testing.assert_allclose(streamed.mean, np.nanmean(padded, axis=0), rtol=1e-9, atol=1e-12)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(streamed.std, np.nanstd(padded, axis=0), rtol=1e-7, atol=1e-12)
    with pytest.raises(ValueError, match="at least one run"):
        GroupAccumulator().curve()


def test_grouped_curves_reads_a_generator_once() -> None:
    read: list[str] = []

    def runs() -> Iterator[Run]:
        for number, lr in enumerate([0.1, 0.01, 0.1, 0.01, 0.1]):
            read.append(str(number))
            yield Run([float(number)] * 4, {"-lr": lr, "-seed": number}, f"run{number}")

    curves = grouped_curves(runs(), "-lr", window=2)
    assert read == ["0", "1", "2", "3", "4"]
    assert [(values, n) for values, n, _ in curves] == [((0.01,), 2), ((0.1,), 3)]
    np.testing.assert_allclose(curves[0][2].mean, [2.0] * 4)
    np.testing.assert_allclose(curves[1][2].mean, [2.0] * 4)


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


def test_grouped_curves_refuse_more_groups_than_allowed() -> None:
    runs = [Run([1.0, 2.0], {"-name": f"run{number}"}) for number in range(5)]
    assert len(grouped_curves(runs, "-name", window=1, max_groups=5)) == 5
    with pytest.raises(ValueError, match="more than 4 groups"):
        grouped_curves(runs, "-name", window=1, max_groups=4)
