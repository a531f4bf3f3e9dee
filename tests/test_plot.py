"""Tests of pyhermes.plot: the sliding-window statistics and the training-progress plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyhermes.plot import (
    plot_training_progress,
    plot_training_progress_from_experiment,
    plot_training_progress_from_file,
    smoothen,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def naive_smoothen(arr: np.ndarray, window_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The definition: numpy's mean and std over each trailing window."""
    windows = [arr[max(0, i - window_size + 1) : i + 1] for i in range(len(arr))]
    return (
        np.array([w.mean() for w in windows], dtype=np.float64),
        np.array([w.std() for w in windows], dtype=np.float64),
    )


# --------------------------------------------------------------------------- smoothen

_values = st.one_of(
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False),
    # few distinct values, so that windows of equal values (std 0) and near-equal ones occur
    st.sampled_from([0.0, 1.0, -1.0, 1e4, -1e4, 9999.999999, 1e-6, 3.25]),
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(_values, min_size=0, max_size=500),
    window_size=st.integers(min_value=1, max_value=200),
)
def test_smoothen_matches_naive_definition(values: list[float], window_size: int) -> None:
    arr = np.array(values, dtype=np.float64)
    means, stds = smoothen(arr, window_size)
    expected_means, expected_stds = naive_smoothen(arr, window_size)

    assert means.dtype == np.float64 and stds.dtype == np.float64
    assert means.shape == stds.shape == arr.shape
    # 1e-9, relative to the magnitude of the values when they are large
    atol = 1e-9 * max(1.0, float(np.abs(arr).max(initial=0.0)))
    np.testing.assert_allclose(means, expected_means, rtol=1e-9, atol=atol)
    np.testing.assert_allclose(stds, expected_stds, rtol=1e-9, atol=atol)
    assert (stds >= 0).all()


def test_smoothen_small_example() -> None:
    means, stds = smoothen([1.0, 2.0, 3.0, 4.0], 2)
    np.testing.assert_array_equal(means, [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(stds, [0.0, 0.5, 0.5, 0.5])


def test_smoothen_window_uses_at_most_window_size_values() -> None:
    # the legacy version averaged window_size + 1 values
    means, _ = smoothen(np.array([0.0, 0.0, 3.0, 6.0]), 1)
    np.testing.assert_array_equal(means, [0.0, 0.0, 3.0, 6.0])


def test_smoothen_constant_windows_have_zero_std() -> None:
    arr = np.concatenate([np.full(300, 1e4), np.full(300, -1e4), np.full(300, 0.1)])
    _, stds = smoothen(arr, 50)
    flat = np.ones(arr.shape, dtype=bool)
    for edge in (300, 600):
        flat[edge : edge + 49] = False
    assert (stds[flat] == 0.0).all()


def test_smoothen_window_larger_than_array() -> None:
    arr = np.arange(5, dtype=np.float64)
    means, stds = smoothen(arr, 10**9)
    expected_means, expected_stds = naive_smoothen(arr, 5)
    np.testing.assert_allclose(means, expected_means)
    np.testing.assert_allclose(stds, expected_stds)


def test_smoothen_empty_gives_empty_arrays() -> None:
    means, stds = smoothen([], 3)
    assert means.shape == (0,) and stds.shape == (0,)
    assert means.dtype == np.float64 and stds.dtype == np.float64


@pytest.mark.parametrize("window_size", [0, -1])
def test_smoothen_rejects_window_below_one(window_size: int) -> None:
    with pytest.raises(ValueError, match="window_size"):
        smoothen([1.0, 2.0], window_size)


def test_smoothen_rejects_non_integer_window_and_2d_input() -> None:
    with pytest.raises(TypeError):
        smoothen([1.0, 2.0], 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one-dimensional"):
        smoothen(np.zeros((2, 2)), 2)


def test_smoothen_large_input_is_fast() -> None:
    arr = np.random.default_rng(0).normal(size=200_000)
    means, stds = smoothen(arr, 1000)
    assert means.shape == stds.shape == arr.shape
    np.testing.assert_allclose(means[-1], arr[-1000:].mean(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stds[-1], arr[-1000:].std(), rtol=1e-9)


# --------------------------------------------------------------------------- plots



def _is_figure(obj: object) -> bool:
    from matplotlib.figure import Figure

    return isinstance(obj, Figure)


@pytest.fixture
def scores() -> np.ndarray:
    return np.random.default_rng(1).normal(size=120).cumsum()


def _assert_png(path: Path, width: int, height: int) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert len(data) > len(PNG_SIGNATURE)
    assert data.startswith(PNG_SIGNATURE)
    import matplotlib.image as mpimg

    image = mpimg.imread(path)
    assert image.shape[:2] == (height, width)


def test_plot_returns_figure_without_twin_axis(plt: Any, scores: np.ndarray) -> None:
    fig = plot_training_progress(scores, window_length=10)
    assert _is_figure(fig)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), smoothen(scores, 10)[0])
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], scores)


def test_plot_with_epsilon_schedule_has_twin_axis(plt: Any, scores: np.ndarray) -> None:
    fig = plot_training_progress(scores, eps_start=1.0, eps_end=0.05, eps_decay=0.97)
    assert len(fig.axes) == 2
    eps_line = fig.axes[1].lines[0]
    expected = np.maximum(1.0 * 0.97 ** np.arange(len(scores)), 0.05)
    np.testing.assert_allclose(eps_line.get_ydata(), expected)
    low, high = fig.axes[1].get_ylim()
    assert low < 0.05 and high > 1.0


def test_plot_with_explicit_epsilons_has_twin_axis(plt: Any, scores: np.ndarray) -> None:
    epsilons = np.linspace(1.0, 0.1, len(scores))
    fig = plot_training_progress(scores, epsilons=epsilons)
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), epsilons)


def test_plot_rejects_partial_schedule_and_wrong_epsilon_count(plt: Any, scores: np.ndarray) -> None:
    with pytest.raises(ValueError, match="eps_start, eps_end and eps_decay"):
        plot_training_progress(scores, eps_start=1.0)
    with pytest.raises(ValueError, match="one value per score"):
        plot_training_progress(scores, epsilons=[0.5, 0.4])


def test_plot_saves_png_of_expected_size(plt: Any, tmp_path: Path, scores: np.ndarray) -> None:
    target = tmp_path / "progress.png"
    fig = plot_training_progress(
        scores, eps_start=1.0, eps_end=0.1, eps_decay=0.9, figsize=(4, 3), dpi=50, path=target,
        mark_best=True, window_length=20,
    )
    assert _is_figure(fig)
    _assert_png(target, width=200, height=150)


def test_plot_empty_scores_draws_nothing(plt: Any) -> None:
    fig = plot_training_progress([])
    assert len(fig.axes) == 1
    assert not fig.axes[0].lines and not fig.axes[0].collections
    fig = plot_training_progress(np.array([]), eps_start=1.0, eps_end=0.1, eps_decay=0.9, mark_best=True)
    assert len(fig.axes) == 2
    assert not any(ax.lines or ax.collections for ax in fig.axes)


def test_plot_constant_scores_and_nan_do_not_crash(plt: Any) -> None:
    fig = plot_training_progress([3.0] * 10, mark_best=True, window_length=4)
    low, high = fig.axes[0].get_ylim()
    assert low < 3.0 < high
    plot_training_progress([1.0, float("nan"), 2.0], mark_best=True, window_length=2)


def test_plot_mark_best_lines(plt: Any, scores: np.ndarray) -> None:
    fig = plot_training_progress(scores, window_length=10, mark_best=True)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "Highest overall result" in labels and "Best policy" in labels


def test_plot_suppress_single_scores_and_given_axes(plt: Any, scores: np.ndarray) -> None:
    fig, ax = plt.subplots()
    result = plot_training_progress(scores, ax=ax, suppress_single_scores=True, legend=False)
    assert result is fig
    assert not ax.collections and len(ax.lines) == 1


def test_plot_from_file_skips_header_and_partial_last_line(plt: Any, tmp_path: Path) -> None:
    scores_file = tmp_path / "run.scores"
    scores_file.write_text("episode return\n1.0\n2.5\n\n-3.0\n4.75\n1e")
    target = tmp_path / "from_file.png"
    fig = plot_training_progress_from_file(
        scores_file, None, None, None, window_length=2, path=target, figsize=(3, 2), dpi=40,
        mark_best=False,
    )
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    expected = np.array([1.0, 2.5, -3.0, 4.75])
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], expected)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), smoothen(expected, 2)[0])
    _assert_png(target, width=120, height=80)


def test_plot_from_file_with_epsilon_and_missing_file(plt: Any, tmp_path: Path) -> None:
    scores_file = tmp_path / "run.scores"
    scores_file.write_text("1\n2\n3\n")
    fig = plot_training_progress_from_file(scores_file, eps_start=1, eps_end=0.01, eps_decay=0.5)
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [1.0, 0.5, 0.25])
    fig = plot_training_progress_from_file(tmp_path / "missing.scores")
    assert len(fig.axes) == 2 and not fig.axes[0].lines  # the default schedule's twin axis
    fig = plot_training_progress_from_file(tmp_path / "missing.scores", None, None, None)
    assert len(fig.axes) == 1


def test_plot_from_file_draws_the_documented_default_epsilon(plt: Any, tmp_path: Path) -> None:
    """The documentation's usage: ``plot_training_progress_from_file(path)``."""
    scores_file = tmp_path / "run.scores"
    values = np.sin(np.arange(600) / 50.0)
    scores_file.write_text("".join(f"{value}\n" for value in values))
    fig = plot_training_progress_from_file(scores_file)
    assert len(fig.axes) == 2
    expected = np.maximum(1 * 0.999 ** np.arange(600), 0.001)  # eps_start=1, eps_end=0.001, eps_decay=0.999
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), expected)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "Highest overall result" in labels and "Best policy" in labels  # mark_best=True
    given = np.linspace(1.0, 0.0, 600)
    fig = plot_training_progress_from_file(scores_file, None, None, None, given)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), given)


@dataclass
class FakeExperiment:
    """A stand-in with what plot_training_progress_from_experiment uses."""

    values: np.ndarray
    exec_args_dict: dict[str, Any] = field(default_factory=dict)
    identifier: str = "2024_01_02_030405000000_0_abcde"

    def scores(self) -> np.ndarray:
        return self.values


def test_plot_from_experiment_with_epsilon_keys(plt: Any, tmp_path: Path, scores: np.ndarray) -> None:
    exp = FakeExperiment(scores, {"-es": 1.0, "-ee": 0.05, "-ed": 0.995, "--doubledqn": True})
    target = tmp_path / "exp.png"
    fig = plot_training_progress_from_experiment(exp, path=target, figsize=(5, 4), dpi=30)
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == exp.identifier
    expected = np.maximum(0.995 ** np.arange(len(scores)), 0.05)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), expected)
    _assert_png(target, width=150, height=120)


def test_plot_from_experiment_without_epsilon_keys(plt: Any, scores: np.ndarray) -> None:
    exp = FakeExperiment(scores, {"-es": 1.0, "--doubledqn": True})
    fig = plot_training_progress_from_experiment(exp, title="custom")
    assert len(fig.axes) == 1
    assert fig.axes[0].get_title() == "custom"
    custom_keys = FakeExperiment(scores, {"--start": 1, "--end": 0.1, "--decay": 0.9})
    fig = plot_training_progress_from_experiment(
        custom_keys, eps_start_key="--start", eps_end_key="--end", eps_decay_key="--decay"
    )
    assert len(fig.axes) == 2


def test_plot_from_experiment_rejects_non_numeric_epsilon(plt: Any, scores: np.ndarray) -> None:
    exp = FakeExperiment(scores, {"-es": "high", "-ee": 0.05, "-ed": 0.995})
    with pytest.raises(ValueError, match="-es"):
        plot_training_progress_from_experiment(exp)
