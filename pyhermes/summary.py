"""Score summaries: the numbers the index keeps about a run's ``.scores`` file."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

#: Length of the trailing window of ``final_mean`` and of the sliding window of ``best_window_mean``.
SUMMARY_WINDOW = 100


@dataclass(frozen=True)
class ScoreSummary:
    """Summary of a run's scores; NaNs are ignored, and every field is ``None`` without scores.

    ``count`` counts every parsed value (NaNs included); ``argmax`` is the 0-based
    episode index of the maximum; ``final_mean`` is the mean of the last 100 values;
    ``best_window_mean`` the best mean over any window of 100 consecutive values
    (of all values when there are fewer).
    """

    count: int
    first: float | None = None
    last: float | None = None
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    argmax: int | None = None
    final_mean: float | None = None
    best_window_mean: float | None = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Return the names of the summary fields, ``count`` first."""
        return tuple(field.name for field in fields(cls))

    def as_dict(self) -> dict[str, float | int | None]:
        """Return the summary as a plain dict."""
        return asdict(self)

    def __repr__(self) -> str:
        """``ScoreSummary(count=1000, final_mean=212.4, best_window_mean=230.1, max=260 at 874, ...)``.

        Numbers have 6 significant digits; a summary without scores says so.
        """
        if self.count == 0:
            return "ScoreSummary(count=0, no scores)"
        if self.max is None:
            return f"ScoreSummary(count={self.count}, no numbers: every score is NaN)"
        parts = [f"count={self.count}"]
        for name in ("final_mean", "best_window_mean", "max", "min", "mean", "std", "first", "last"):
            value = getattr(self, name)
            if value is not None:
                text = f"{name}={value:.6g}"
                if name == "max" and self.argmax is not None:
                    text += f" at {self.argmax}"
                parts.append(text)
        return f"ScoreSummary({', '.join(parts)})"


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def summarize(scores: np.ndarray, window: int = SUMMARY_WINDOW) -> ScoreSummary:
    """Return the :class:`ScoreSummary` of ``scores`` (NaNs ignored)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    with np.errstate(all="ignore"):
        all_finite = bool(values.size) and bool(np.isfinite(values.sum()))
    if all_finite:
        return _summarize_finite(values, window)
    valid = ~np.isnan(values)
    if not valid.any():
        return ScoreSummary(count=int(values.size))
    numbers = values[valid]
    # Infinite scores make some of these NaN; numpy would warn about each.
    with np.errstate(all="ignore"):
        mean = float(numbers.mean())
        std = float(np.std(numbers)) if np.isfinite(numbers).all() else math.nan
        tail = values[-window:]
        final_mean = float(np.nanmean(tail)) if (~np.isnan(tail)).any() else math.nan
        best_window_mean = _best_window_mean(values, window)
    return ScoreSummary(
        count=int(values.size),
        first=float(numbers[0]),
        last=float(numbers[-1]),
        min=float(numbers.min()),
        max=float(numbers.max()),
        mean=_finite_or_none(mean),
        std=_finite_or_none(std),
        argmax=int(np.flatnonzero(valid)[numbers.argmax()]),
        final_mean=_finite_or_none(final_mean),
        best_window_mean=_finite_or_none(best_window_mean),
    )


def _summarize_finite(values: np.ndarray, window: int) -> ScoreSummary:
    """The common case, all values finite: a few passes over the array, no masks."""
    size = min(window, values.size)
    sums = np.cumsum(values)
    window_sums = sums[size - 1 :] - np.concatenate(([0.0], sums[: values.size - size]))
    argmax = int(values.argmax())
    return ScoreSummary(
        count=int(values.size),
        first=float(values[0]),
        last=float(values[-1]),
        min=float(values.min()),
        max=float(values[argmax]),
        mean=float(sums[-1] / values.size),
        std=float(values.std()),
        argmax=argmax,
        final_mean=float(values[-window:].mean()),
        best_window_mean=float(window_sums.max() / size),
    )


def _best_window_mean(values: np.ndarray, window: int) -> float:
    """Best mean of the non-NaN values over windows of ``window`` consecutive entries."""
    size = min(window, values.size)
    if np.isinf(values).any():
        # Cumulative sums cannot subtract infinities; take those windows one by one.
        means = np.array(
            [_nan_mean(values[start : start + size]) for start in range(values.size - size + 1)]
        )
    else:
        valid = ~np.isnan(values)
        sums = np.concatenate(([0.0], np.cumsum(np.where(valid, values, 0.0))))
        counts = np.concatenate(([0], np.cumsum(valid)))
        window_counts = counts[size:] - counts[:-size]
        means = (sums[size:] - sums[:-size]) / np.maximum(window_counts, 1)
        means[window_counts == 0] = np.nan
    if np.isnan(means).all():
        return math.nan
    return float(np.nanmax(means))


def _nan_mean(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else math.nan
