"""Plots of training progress: episode scores, their sliding mean and the exploration schedule.

matplotlib is an optional dependency (the ``plot`` extra); it is imported when a
plot function is called, never when this module is imported. Every plot
function returns the :class:`matplotlib.figure.Figure` it drew on, works
without a display (the Agg backend is selected when no ``DISPLAY`` is set), and
writes the figure to ``path`` when one is given.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Union

import numpy as np
from numpy.typing import ArrayLike

from pyhermes._optional import pyplot, require

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "smoothen",
    "plot_training_progress",
    "plot_training_progress_from_file",
    "plot_training_progress_from_experiment",
]

PathLike = Union[str, "os.PathLike[str]"]

EPSILON_LABEL = "Random Exploration Coefficient"


class ExperimentLike(Protocol):
    """What :func:`plot_training_progress_from_experiment` needs of an experiment."""

    @property
    def identifier(self) -> str:
        """The run's identifier, used as the default title."""
        ...

    @property
    def exec_args_dict(self) -> Mapping[str, Any]:
        """The run's command-line options, e.g. ``{"-es": 1.0, "-ee": 0.05}``."""
        ...

    def scores(self) -> np.ndarray:
        """Return the run's episode scores."""
        ...


# --------------------------------------------------------------------------- smoothing


def smoothen(arr: ArrayLike, window_size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Sliding mean and standard deviation over a trailing window.

    Element ``i`` of the results is the mean and the population standard deviation
    (``ddof=0``) of ``arr[max(0, i - window_size + 1) : i + 1]``: the first values use
    the (fewer than ``window_size``) values there are.

    The computation is O(n), with cumulative sums and no Python loop per element.
    To stay accurate it splits ``arr`` into blocks of ``window_size`` values, so that
    every window is a suffix of one block plus a prefix of the next: each cumulative
    sum then runs only over values of the window itself, shifted by a value of the
    window (the block's first value for prefixes, its last for suffixes). The two
    parts are merged with the pairwise (Chan) update, whose terms are all
    non-negative, and tiny negative variances left by rounding are clipped to 0. A
    window of equal values thus has a standard deviation of exactly 0, and the
    results agree with ``numpy.mean``/``numpy.std`` of each window well within 1e-9
    relative to the largest magnitude of the values (typically to ~1e-14). (Cumulative
    sums over the whole array, even after subtracting its mean, lose up to ~1e-7 of that
    magnitude in the standard deviation of a near-constant window.) A non-finite value makes the results of
    the windows holding it non-finite.

    Args:
        arr: the values, one-dimensional (a list, tuple or array; converted to float64).
        window_size: the largest number of values in a window, at least 1.

    Returns:
        ``(means, stds)``: two float64 arrays of the same length as ``arr`` (two empty
        arrays for an empty ``arr``).

    Raises:
        ValueError: ``window_size`` is smaller than 1, or ``arr`` is not one-dimensional.
        TypeError: ``window_size`` is not an integer.
    """
    window = operator.index(window_size)
    if window < 1:
        raise ValueError(f"window_size must be at least 1, got {window}")
    values = np.asarray(arr, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"smoothen needs a one-dimensional array, got shape {values.shape}")
    n = values.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64)

    # With window >= n every window starts at 0; a block of n values gives the same result
    # without allocating window-sized buffers.
    window = min(window, n)
    n_blocks = -(-n // window)
    padded = np.empty(n_blocks * window, dtype=np.float64)
    padded[:n] = values
    padded[n:] = values[-1]  # never read: prefixes stop at i < n, suffixes are of full blocks
    blocks = padded.reshape(n_blocks, window)
    counts = np.arange(1, window + 1, dtype=np.float64)

    # Prefix statistics inside each block, shifted by the block's first value.
    first = blocks[:, :1]
    shifted = blocks - first
    pre_sum = np.cumsum(shifted, axis=1)
    pre_sq = np.cumsum(shifted * shifted, axis=1)
    pre_mean = (first + pre_sum / counts).ravel()
    pre_m2 = np.maximum(pre_sq - pre_sum * pre_sum / counts, 0.0).ravel()

    # Suffix statistics inside each block, shifted by the block's last value.
    last = blocks[:, -1:]
    shifted = (blocks - last)[:, ::-1]
    suf_sum = np.cumsum(shifted, axis=1)[:, ::-1]
    suf_sq = np.cumsum(shifted * shifted, axis=1)[:, ::-1]
    suf_counts = counts[::-1]
    suf_mean = (last + suf_sum / suf_counts).ravel()
    suf_m2 = np.maximum(suf_sq - suf_sum * suf_sum / suf_counts, 0.0).ravel()

    index = np.arange(n)
    block_start = (index // window) * window
    low = np.maximum(index - window + 1, 0)
    n_pre = (index - block_start + 1).astype(np.float64)  # block_start .. i
    n_suf = (block_start - low).astype(np.float64)  # low .. block_start - 1, maybe empty
    has_suf = n_suf > 0
    suf_at = np.where(has_suf, low, 0)

    mean_q = pre_mean[index]
    m2_q = pre_m2[index]
    mean_p = np.where(has_suf, suf_mean[suf_at], mean_q)
    m2_p = np.where(has_suf, suf_m2[suf_at], 0.0)

    total = n_pre + n_suf
    delta = mean_q - mean_p
    means = mean_p + delta * (n_pre / total)
    m2 = m2_p + m2_q + delta * delta * (n_pre * n_suf / total)
    stds = np.sqrt(np.maximum(m2 / total, 0.0))
    return means, stds


# --------------------------------------------------------------------------- helpers


def show_if_interactive(plt: Any) -> None:
    """Call ``plt.show()`` unless the current matplotlib backend is non-interactive (e.g. Agg)."""
    backend = str(plt.get_backend()).lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        non_interactive = set(backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE))
    except ImportError:  # matplotlib < 3.9
        matplotlib = require("matplotlib")
        non_interactive = {name.lower() for name in matplotlib.rcsetup.non_interactive_bk}
    if backend not in non_interactive:
        plt.show()


def _padded_range(low: float, high: float, gap: float) -> tuple[float, float]:
    """Return ``(low, high)`` widened by ``gap`` times their distance (by 0.5 when equal)."""
    span = abs(high - low)
    if span == 0:
        pad = 0.5 if low == 0 else abs(low) * 0.05
        return low - pad, high + pad
    return low - gap * span, high + gap * span


def _epsilon_schedule(start: float, end: float, decay: float, n: int) -> np.ndarray:
    """Return ``max(start * decay**i, end)`` for ``i`` in ``0 .. n-1``."""
    with np.errstate(over="ignore", under="ignore"):
        return np.maximum(start * np.power(decay, np.arange(n, dtype=np.float64)), end)


# --------------------------------------------------------------------------- plots


def figure_and_axes(ax: Any, figsize: tuple[float, float], dpi: float | None) -> tuple[Any, Any]:
    """Return ``(figure, axes)``: a new constrained-layout figure, or the given axes' figure."""
    if ax is not None:
        return ax.figure, ax
    plt = pyplot()
    return plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")


def plot_training_progress(
    scores: ArrayLike,
    eps_start: float | None = None,
    eps_end: float | None = None,
    eps_decay: float | None = None,
    epsilons: Sequence[float] | np.ndarray | None = None,
    window_length: int = 250,
    figsize: tuple[float, float] = (12, 12),
    fontsize: float = 18,
    path: PathLike | None = None,
    scores_color: str = "c",
    mean_color: str = "r",
    score_range: tuple[float, float] | None = None,
    epsilon_range: tuple[float, float] | None = None,
    axis_gap: float = 0.02,
    mark_best: bool = False,
    legend: bool = True,
    ax: Axes | None = None,
    *,
    suppress_single_scores: bool = False,
    dpi: float | None = None,
    title: str | None = None,
) -> Figure:
    """Plot a training curve: the episode scores, their sliding mean and, optionally, epsilon.

    The epsilon-greedy exploration coefficient is drawn on a second (twin) y-axis when
    it is given, either as its schedule (``eps_start``, ``eps_end``, ``eps_decay``:
    episode ``i`` used ``max(eps_start * eps_decay**i, eps_end)``) or as the list
    ``epsilons`` of the values used (ignored when the schedule is given). Without
    either, the figure has no twin axis.

    Empty ``scores`` give a figure with its axes (and the twin axis if epsilon is
    given) but no points and no lines; nothing is raised.

    Args:
        scores: the episode returns, one-dimensional.
        eps_start: exploration coefficient of the first episode.
        eps_end: the lowest exploration coefficient.
        eps_decay: exponential decay factor per episode.
        epsilons: alternatively, the exploration coefficient of every episode; as many
            values as ``scores``.
        window_length: size of the trailing window of the sliding mean (see :func:`smoothen`).
        figsize: size of a new figure, in inches (ignored when ``ax`` is given).
        fontsize: font size of labels, ticks, legend and title.
        path: when given, the figure is saved there (format from the suffix, e.g. ``.png``),
            at ``dpi`` and without cropping, so a PNG is ``figsize * dpi`` pixels.
        scores_color: colour of the score dots.
        mean_color: colour of the sliding mean.
        score_range: ``(low, high)`` of the score axis; by default the scores' range
            widened by ``axis_gap``.
        epsilon_range: ``(low, high)`` of the epsilon axis; by default the epsilons'
            range widened by ``axis_gap``.
        axis_gap: fraction of the range added on both sides of the default axis ranges.
        mark_best: draw a vertical line at the highest sliding mean ("Highest overall
            result") and one at the end of the best non-overlapping block of
            ``window_length`` episodes ("Best policy").
        legend: draw a legend (holding the epsilon curve too).
        ax: the axes to draw on; by default a new figure is made. When given, ``path``
            saves the whole figure holding ``ax``.
        suppress_single_scores: do not draw the single score dots.
        dpi: resolution of a new figure and of the saved file; matplotlib's default when
            ``None``.
        title: title of the axes.

    Returns:
        The figure drawn on.

    Raises:
        ValueError: only some of ``eps_start``, ``eps_end``, ``eps_decay`` are given;
            ``epsilons`` does not have one value per score; ``scores`` is not
            one-dimensional; ``window_length`` is smaller than 1.
        MissingDependencyError: matplotlib is not installed.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    n = values.shape[0]

    schedule = (eps_start, eps_end, eps_decay)
    eps_values: np.ndarray | None = None
    if any(value is not None for value in schedule):
        if any(value is None for value in schedule):
            raise ValueError(
                "give all of eps_start, eps_end and eps_decay to plot the epsilon-greedy "
                "schedule, or none of them"
            )
        eps_values = _epsilon_schedule(float(eps_start), float(eps_end), float(eps_decay), n)  # type: ignore[arg-type]
    elif epsilons is not None and len(epsilons) > 0:
        eps_values = np.asarray(epsilons, dtype=np.float64)
        if eps_values.shape != (n,):
            raise ValueError(
                f"epsilons must hold one value per score: got {eps_values.size} values "
                f"for {n} scores"
            )
    means, _ = smoothen(values, window_length)

    fig, ax1 = figure_and_axes(ax, figsize, dpi)
    ax1.set_ylabel("Return", fontsize=fontsize)
    ax1.set_xlabel("Episode #", fontsize=fontsize)
    ax1.tick_params(labelsize=fontsize)
    if title is not None:
        ax1.set_title(title, fontsize=fontsize)

    x = np.arange(n)
    if n:
        if not suppress_single_scores:
            ax1.scatter(x, values, label="Episodes", color=scores_color, alpha=0.8, s=1)
        ax1.plot(x, means, label="Sliding Mean", color=mean_color)

    if score_range is not None:
        ax1.set_ylim(*score_range)
    elif n and np.isfinite(values).any():
        finite = values[np.isfinite(values)]
        ax1.set_ylim(*_padded_range(float(finite.min()), float(finite.max()), axis_gap))

    ax2 = None
    if eps_values is not None:
        ax2 = ax1.twinx()
        ax2.set_ylabel(EPSILON_LABEL, fontsize=fontsize)
        ax2.tick_params(labelsize=fontsize)
        if eps_values is not None and n:
            ax2.plot(x, eps_values, label="Epsilon")
        if epsilon_range is not None:
            ax2.set_ylim(*epsilon_range)
        elif eps_values is not None and n and np.isfinite(eps_values).any():
            finite = eps_values[np.isfinite(eps_values)]
            ax2.set_ylim(*_padded_range(float(finite.min()), float(finite.max()), axis_gap))

    if mark_best and n and not np.isnan(means).all():
        best = int(np.nanargmax(means))
        ax1.axvline(x=best, linestyle="dotted", color="#A0A0A0", label="Highest overall result")
        starts = np.arange(0, n, window_length)
        block_means = np.add.reduceat(values, starts) / np.diff(np.append(starts, n))
        if not np.isnan(block_means).all():
            best_block = int(np.nanargmax(block_means))
            end = min(int(starts[best_block]) + window_length, n) - 1
            ax1.axvline(x=end, linestyle="dotted", color="k", label="Best policy")

    if legend:
        handles, labels = ax1.get_legend_handles_labels()
        if ax2 is not None:
            more_handles, more_labels = ax2.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        if handles:
            ax1.legend(handles, labels, fontsize=fontsize)

    if path is not None:
        fig.savefig(os.fspath(path), dpi="figure" if dpi is None else dpi)
    return fig


def plot_training_progress_from_file(
    file: PathLike,
    eps_start: float | None = 1,
    eps_end: float | None = 0.001,
    eps_decay: float | None = 0.999,
    epsilons: Sequence[float] | np.ndarray | None = (),
    window_length: int = 250,
    figsize: tuple[float, float] = (12, 12),
    fontsize: float = 18,
    path: PathLike | None = None,
    scores_color: str = "c",
    mean_color: str = "r",
    score_range: tuple[float, float] | None = None,
    epsilon_range: tuple[float, float] | None = None,
    axis_gap: float = 0.02,
    mark_best: bool = True,
    legend: bool = True,
    *,
    suppress_single_scores: bool = False,
    ax: Axes | None = None,
    dpi: float | None = None,
    title: str | None = None,
) -> Figure:
    """Read the scores of a ``.scores`` file and plot the training progress.

    The file is read with :func:`pyhermes.rundir.read_scores`: a non-numeric header
    line, blank lines and an unterminated last line that does not parse (a run still
    writing) are skipped, and a missing file gives no scores (an empty figure). The
    other arguments are those of :func:`plot_training_progress`, with the documented
    defaults of this function: the epsilon schedule ``eps_start=1``,
    ``eps_end=0.001``, ``eps_decay=0.999`` is drawn and the best results are marked.
    As documented, ``epsilons`` is ignored while the schedule is given: pass
    ``eps_start=None, eps_end=None, eps_decay=None`` with it, or all three as
    ``None`` for no epsilon curve. (The documented default ``epsilons=[]`` is the
    empty tuple here: the same behaviour without a shared mutable default.)

    Args:
        file: the ``.scores`` file to read.
        eps_start, eps_end, eps_decay, epsilons, window_length, figsize, fontsize, path,
        scores_color, mean_color, score_range, epsilon_range, axis_gap, mark_best,
        legend, suppress_single_scores, ax, dpi, title: see :func:`plot_training_progress`.

    Returns:
        The figure drawn on.

    Raises:
        RunFormatError: a line of the file is not a number.
        ValueError: see :func:`plot_training_progress`.
        MissingDependencyError: matplotlib is not installed.
    """
    from pyhermes.rundir import read_scores

    return plot_training_progress(
        read_scores(file),
        eps_start=eps_start,
        eps_end=eps_end,
        eps_decay=eps_decay,
        epsilons=epsilons,
        window_length=window_length,
        figsize=figsize,
        fontsize=fontsize,
        path=path,
        scores_color=scores_color,
        mean_color=mean_color,
        score_range=score_range,
        epsilon_range=epsilon_range,
        axis_gap=axis_gap,
        mark_best=mark_best,
        legend=legend,
        ax=ax,
        suppress_single_scores=suppress_single_scores,
        dpi=dpi,
        title=title,
    )


def plot_training_progress_from_experiment(
    exp: ExperimentLike,
    eps_start_key: str = "-es",
    eps_end_key: str = "-ee",
    eps_decay_key: str = "-ed",
    window_length: int = 250,
    figsize: tuple[float, float] = (12, 12),
    fontsize: float = 18,
    path: PathLike | None = None,
    scores_color: str = "c",
    mean_color: str = "r",
    score_range: tuple[float, float] | None = None,
    epsilon_range: tuple[float, float] | None = None,
    axis_gap: float = 0.02,
    mark_best: bool = True,
    legend: bool = True,
    *,
    suppress_single_scores: bool = False,
    ax: Axes | None = None,
    dpi: float | None = None,
    title: str | None = None,
) -> Figure:
    """Plot the training progress of an experiment (a run).

    The scores are ``exp.scores()``. The epsilon schedule is drawn when all three of
    ``eps_start_key``, ``eps_end_key`` and ``eps_decay_key`` are keys of
    ``exp.exec_args_dict`` (the run's command-line options); when any is missing, no
    epsilon is drawn. The title defaults to ``exp.identifier``.

    Args:
        exp: the experiment: anything with ``scores()``, ``exec_args_dict`` and
            ``identifier``.
        eps_start_key: option holding the first exploration coefficient.
        eps_end_key: option holding the lowest exploration coefficient.
        eps_decay_key: option holding the decay factor per episode.
        window_length, figsize, fontsize, path, scores_color, mean_color, score_range,
        epsilon_range, axis_gap, mark_best, legend, suppress_single_scores, ax, dpi:
            see :func:`plot_training_progress`.
        title: title of the axes; ``exp.identifier`` when ``None``.

    Returns:
        The figure drawn on.

    Raises:
        ValueError: an epsilon option's value is not a number; see also
            :func:`plot_training_progress`.
        MissingDependencyError: matplotlib is not installed.
    """
    args = exp.exec_args_dict
    keys = (eps_start_key, eps_end_key, eps_decay_key)
    schedule: list[float | None] = [None, None, None]
    if all(key in args for key in keys):
        for position, key in enumerate(keys):
            value = args[key]
            try:
                if isinstance(value, (bool, str, bytes)):
                    raise TypeError
                schedule[position] = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"option {key} of {exp.identifier} is {value!r}, not a number; "
                    "cannot plot the epsilon schedule"
                ) from None
    return plot_training_progress(
        exp.scores(),
        eps_start=schedule[0],
        eps_end=schedule[1],
        eps_decay=schedule[2],
        window_length=window_length,
        figsize=figsize,
        fontsize=fontsize,
        path=path,
        scores_color=scores_color,
        mean_color=mean_color,
        score_range=score_range,
        epsilon_range=epsilon_range,
        axis_gap=axis_gap,
        mark_best=mark_best,
        legend=legend,
        ax=ax,
        suppress_single_scores=suppress_single_scores,
        dpi=dpi,
        title=exp.identifier if title is None else title,
    )
