"""The statistics of learning curves: NaN-skipping smoothing and per-episode group statistics.

The rules are those of :mod:`pyhermes.curves` (its module docstring): a run's scores
are smoothed by a trailing mean that skips NaN scores, and a group's runs are
folded one at a time into a :class:`GroupAccumulator`, so that a group of any size
costs the memory of its longest run.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from pyhermes.plot import smoothen

__all__ = [
    "GroupCurve",
    "GroupAccumulator",
    "check_window",
    "check_min_runs",
    "nan_trailing_mean",
    "nan_smoothen",
    "group_curve",
    "band_limits",
]

_Z95 = 1.96


class GroupCurve(NamedTuple):
    """The statistics of one group's runs at each episode ``0 .. len(mean) - 1``.

    ``mean``: the mean of the runs' smoothed scores; ``std``: their standard deviation
    (``ddof=0``); ``sample_std``: their sample standard deviation (``ddof=1``, NaN where
    ``counts`` is 1); ``counts``: how many runs have a smoothed value at the episode
    (they reached it, and not every score of their window there is NaN). ``mean`` and
    the deviations are NaN where ``counts`` is 0.
    """

    mean: np.ndarray
    std: np.ndarray
    sample_std: np.ndarray
    counts: np.ndarray


def check_window(window: int) -> int:
    value = operator.index(window)
    if value < 1:
        raise ValueError(f"window must be at least 1, got {value}")
    return value


def check_min_runs(min_runs: int | None) -> int | None:
    if min_runs is None:
        return None
    value = operator.index(min_runs)
    if value < 1:
        raise ValueError(f"min_runs must be at least 1 (or None for half the runs), got {value}")
    return value


def _trailing_sums(values: np.ndarray, window: int) -> np.ndarray:
    """Sums of ``values[max(0, i - window + 1) : i + 1]`` for every ``i``: finite values only.

    Cumulative sums restart at every block of ``window`` values, so that each sum runs
    only over values of its own window (a window is a suffix of one block plus a prefix
    of the next): the rounding error is that of a sum of ``window`` values, however
    long the run.
    """
    n = values.size
    blocks = -(-n // window)
    padded = np.zeros(blocks * window, dtype=np.float64)
    padded[:n] = values
    prefix = np.cumsum(padded.reshape(blocks, window), axis=1)
    sums = prefix.copy()
    # The window ending at column j of block b adds the previous block after column j.
    sums[1:] += prefix[:-1, -1:] - prefix[:-1]
    return sums.ravel()[:n]


def nan_trailing_mean(scores: Any, window: int = 100) -> np.ndarray:
    """Return the trailing mean of ``scores`` over at most ``window`` values, NaN scores skipped.

    Element ``i`` is the mean of the non-NaN values of
    ``scores[max(0, i - window + 1) : i + 1]`` (NaN when all of them are NaN): the
    rule of the score summaries, so that with ``window=100`` the last element is the
    run's ``final_mean``. An infinite score makes the windows holding it infinite or NaN.

    Raises:
        ValueError: ``window`` is smaller than 1, or ``scores`` is not one-dimensional.
        TypeError: ``window`` is not an integer.
    """
    window = check_window(window)
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    if not values.size:
        return np.empty(0, dtype=np.float64)
    window = min(window, values.size)
    missing = np.isnan(values)
    if np.isinf(values).any():  # block sums would subtract infinities from other windows
        return nan_smoothen(values, window)[0]
    if not missing.any():
        counts = np.minimum(np.arange(1, values.size + 1), window).astype(np.float64)
        return _trailing_sums(values, window) / counts
    sums = _trailing_sums(np.where(missing, 0.0, values), window)
    counts = _trailing_sums((~missing).astype(np.float64), window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def nan_smoothen(scores: Any, window: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Return the trailing mean and standard deviation (``ddof=0``) of ``scores``, NaN scores skipped.

    The rule of :func:`nan_trailing_mean`, with the band of a single run's line. Without
    NaNs it is :func:`pyhermes.plot.smoothen` itself.

    Raises:
        ValueError, TypeError: as :func:`nan_trailing_mean`.
    """
    window = check_window(window)
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    missing = np.isnan(values)
    if not missing.any():
        with np.errstate(invalid="ignore", over="ignore"):  # infinite scores: non-finite windows
            return smoothen(values, window)
    size = min(window, values.size)
    sizes = np.minimum(np.arange(1, values.size + 1), size)
    filled = np.where(missing, 0.0, values)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        means, stds = smoothen(filled, size)
        counts = np.rint(smoothen((~missing).astype(np.float64), size)[0] * sizes)
        mean = np.where(counts > 0, means * sizes / counts, np.nan)
        squares = (stds * stds + means * means) * sizes / counts
        variance = np.maximum(squares - mean * mean, 0.0)
        # One value has no spread: say so exactly, where the subtraction above leaves a crumb.
        std = np.where(counts > 1, np.sqrt(variance), np.where(counts == 1, 0.0, np.nan))
    return mean, std


class GroupAccumulator:
    """The statistics of one group's smoothed curves, accumulated one run at a time.

    Holds, per episode, how many runs have a smoothed value there, their sum and the
    sum of squared deviations (Welford's update): the memory of the longest run,
    whatever the number of runs. :meth:`curve` gives the :class:`GroupCurve`.
    """

    def __init__(self, window: int = 100) -> None:
        """Start an empty group whose runs are smoothed over ``window`` scores.

        Raises:
            ValueError: ``window`` is smaller than 1.
            TypeError: ``window`` is not an integer.
        """
        self.window = check_window(window)
        self.lengths: list[int] = []
        self._counts = np.zeros(0, dtype=np.int64)
        self._sums = np.zeros(0, dtype=np.float64)
        self._squares = np.zeros(0, dtype=np.float64)

    @property
    def runs(self) -> int:
        """How many runs were added."""
        return len(self.lengths)

    def add(self, scores: Any) -> bool:
        """Add one run's scores (smoothed by :func:`nan_trailing_mean`); return False, adding
        nothing, when it has none.

        Raises:
            ValueError: ``scores`` is not one-dimensional.
        """
        values = np.asarray(scores, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
        if not values.size:
            return False
        self.add_smoothed(nan_trailing_mean(values, self.window))
        return True

    def add_smoothed(self, smoothed: np.ndarray) -> None:
        """Add one run's smoothed curve (non-empty; NaN where it has no value)."""
        length = smoothed.size
        if length > self._counts.size:
            grow = length - self._counts.size
            self._counts = np.concatenate((self._counts, np.zeros(grow, dtype=np.int64)))
            self._sums = np.concatenate((self._sums, np.zeros(grow)))
            self._squares = np.concatenate((self._squares, np.zeros(grow)))
        self.lengths.append(length)
        valid = ~np.isnan(smoothed)
        counts, sums, squares = self._counts[:length], self._sums[:length], self._squares[:length]
        counts += valid
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            old_mean = sums / np.maximum(counts - 1, 1)  # of the runs before (where valid)
            np.add(sums, smoothed, out=sums, where=valid)
            new_mean = sums / np.maximum(counts, 1)
            change = (smoothed - old_mean) * (smoothed - new_mean)
        np.add(squares, change, out=squares, where=valid)

    def curve(self, min_runs: int | None = None) -> GroupCurve:
        """Return the group's :class:`GroupCurve`, as long as its ``min_runs``-th longest run.

        Raises:
            ValueError: no run was added, or ``min_runs`` is smaller than 1.
            TypeError: ``min_runs`` is not an integer.
        """
        min_runs = check_min_runs(min_runs)
        if not self.lengths:
            raise ValueError("group_curve needs at least one run")
        n_runs = len(self.lengths)
        needed = min((n_runs + 1) // 2 if min_runs is None else min_runs, n_runs)
        length = sorted(self.lengths, reverse=True)[needed - 1]
        counts = self._counts[:length].copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(counts > 0, self._sums[:length] / counts, np.nan)
            squares = self._squares[:length]
            std = np.where(counts > 0, np.sqrt(np.maximum(squares, 0.0) / counts), np.nan)
            sample_std = np.where(counts > 1, np.sqrt(np.maximum(squares, 0.0) / (counts - 1)), np.nan)
        return GroupCurve(mean=mean, std=std, sample_std=sample_std, counts=counts)


def group_curve(
    runs_scores: Sequence[np.ndarray], window: int = 100, min_runs: int | None = None
) -> GroupCurve:
    """Return the statistics of a group's smoothed learning curves at each episode.

    Each run's scores are smoothed with :func:`nan_trailing_mean` (trailing mean of at
    most ``window`` values, NaN scores skipped) and accumulated episode by episode
    over the runs that reached it and have a value there (:class:`GroupAccumulator`).
    The result stops after the last episode reached by at least ``min_runs`` runs (by
    default half the runs, rounded up; at most all of them).

    Args:
        runs_scores: the scores of each run, each non-empty and one-dimensional.
        window: the smoothing window, at least 1.
        min_runs: the fewest runs an episode needs to be kept, at least 1, or ``None``.

    Returns:
        A :class:`GroupCurve`, its arrays as long as the ``min_runs``-th longest run.

    Raises:
        ValueError: there are no runs, a run has no scores or is not one-dimensional,
            ``window`` or ``min_runs`` is smaller than 1.
        TypeError: ``window`` or ``min_runs`` is not an integer.
    """
    accumulator = GroupAccumulator(window)
    min_runs = check_min_runs(min_runs)
    for scores in runs_scores:
        if not accumulator.add(scores):
            raise ValueError("group_curve needs runs with scores; a run has none")
    return accumulator.curve(min_runs)


def band_limits(curve: GroupCurve, band: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the ``(low, high)`` arrays of a group's band (see the module docstring), or ``None``.

    ``None`` for ``band=None`` and for a ``"ci95"`` band of a group where no episode
    has two runs.
    """
    if band == "std":
        return curve.mean - curve.std, curve.mean + curve.std
    if band == "ci95":
        if not (curve.counts > 1).any():
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            half = _Z95 * curve.sample_std / np.sqrt(curve.counts)
        return curve.mean - half, curve.mean + half
    return None
