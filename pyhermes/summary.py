"""Score summaries: the numbers the index keeps about a run's ``.scores`` file."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported by the functions that compute (ScoreSummary needs none)
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
    import numpy as np

    values = np.asarray(scores, dtype=np.float64).ravel()
    with np.errstate(all="ignore"):
        total = np.add.reduce(values) if values.size else None
    if total is not None and np.isfinite(total):
        return _summarize_finite(values, window, total)
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


def _summarize_finite(values: np.ndarray, window: int, total: float) -> ScoreSummary:
    """The common case, all values finite: a few passes over the array, no masks.

    ``total`` is ``np.add.reduce(values)``. The standard deviation and the final
    mean are numpy's ``values.std()`` and ``tail.mean()`` step by step (the same
    operations, hence the same bits), without their Python wrappers' overhead.
    """
    import numpy as np

    size = min(window, values.size)
    sums = np.cumsum(values)
    window_sums = sums[size - 1 :] - np.concatenate(([0.0], sums[: values.size - size]))
    argmax = int(values.argmax())
    deviations = values - total / values.size
    np.multiply(deviations, deviations, out=deviations)
    tail = values[-window:]
    return ScoreSummary(
        count=int(values.size),
        first=float(values[0]),
        last=float(values[-1]),
        min=float(values.min()),
        max=float(values[argmax]),
        mean=float(sums[-1] / values.size),
        std=float(np.sqrt(np.add.reduce(deviations) / values.size)),
        argmax=argmax,
        final_mean=float(np.add.reduce(tail) / tail.size),
        best_window_mean=float(window_sums.max() / size),
    )


def _best_window_mean(values: np.ndarray, window: int) -> float:
    """Best mean of the non-NaN values over windows of ``window`` consecutive entries."""
    import numpy as np

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
    import numpy as np

    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else math.nan


def summarize_chunks(chunks: Iterable[np.ndarray], window: int = SUMMARY_WINDOW) -> ScoreSummary:
    """Return the :class:`ScoreSummary` of the concatenation of ``chunks``, in bounded memory.

    Consumes the chunks one at a time and keeps only running totals and the last
    ``window`` values, so a scores file of any length is summarised in memory
    proportional to one chunk. A single chunk gives exactly :func:`summarize`;
    several give the same counts, first/last/min/max/argmax, final and
    best-window means (the same running sums), and a mean and standard deviation
    equal to :func:`summarize`'s up to rounding (combined per chunk).
    """
    import numpy as np

    pieces = (np.asarray(chunk, dtype=np.float64).ravel() for chunk in chunks)
    nonempty = (piece for piece in pieces if piece.size)
    first = next(nonempty, None)
    if first is None:
        return summarize(np.empty(0, dtype=np.float64), window)
    second = next(nonempty, None)
    if second is None:
        return summarize(first, window)
    accumulator = _Accumulator(window)
    accumulator.add(first)
    accumulator.add(second)
    for piece in nonempty:
        accumulator.add(piece)
    return accumulator.result()


class _Accumulator:
    """Running state of :func:`summarize_chunks` (the rules of :func:`summarize`, chunk by chunk)."""

    def __init__(self, window: int) -> None:
        import numpy as np

        self.window = window
        self.count = 0
        self.valid = 0
        self.first: float | None = None
        self.last: float | None = None
        self.min = math.inf
        self.max = -math.inf
        self.argmax = -1
        self.has_inf = False
        # Mean and M2 (sum of squared deviations) of the non-NaN values, combined per chunk.
        self.mean = 0.0
        self.m2 = 0.0
        self.valid_finite = 0
        # Sequential running sums of the values (NaN as 0) and counts of non-NaN values,
        # exactly as np.cumsum over the whole array gives them, and the last `window` of each
        # (preceded by the 0 before the first value) for the window sums.
        self.total = 0.0
        self.total_count = 0
        self.sums_tail = np.zeros(1)
        self.counts_tail = np.zeros(1, dtype=np.int64)
        self.tail = np.empty(0)
        self.best = math.nan

    def add(self, values: np.ndarray) -> None:
        import numpy as np

        valid = ~np.isnan(values)
        numbers = values[valid] if not valid.all() else values
        start = self.count
        if numbers.size:
            if self.first is None:
                self.first = float(numbers[0])
            self.last = float(numbers[-1])
            with np.errstate(all="ignore"):
                top = int(numbers.argmax())
                if numbers[top] > self.max or self.argmax < 0:
                    self.max = float(numbers[top])
                    self.argmax = start + int(np.flatnonzero(valid)[top])
                self.min = min(self.min, float(numbers.min()))
                if np.isinf(numbers).any():
                    self.has_inf = True
                else:
                    self._combine(numbers)
        self._windows(values, valid)
        self.count += values.size
        self.valid += numbers.size

    def _combine(self, numbers: np.ndarray) -> None:
        import numpy as np

        size = numbers.size
        mean = float(numbers.mean())
        m2 = float(np.square(numbers - mean).sum())
        merged = self.valid_finite + size
        delta = mean - self.mean
        self.mean += delta * size / merged
        self.m2 += m2 + delta * delta * self.valid_finite * size / merged
        self.valid_finite = merged

    def _windows(self, values: np.ndarray, valid: np.ndarray) -> None:
        import numpy as np

        window = self.window
        with np.errstate(all="ignore"):
            sums = np.cumsum(np.concatenate(([self.total], np.where(valid, values, 0.0))))[1:]
            counts = self.total_count + np.cumsum(valid)
            all_sums = np.concatenate((self.sums_tail, sums))
            all_counts = np.concatenate((self.counts_tail, counts))
            if np.isfinite(all_sums).all():
                # Windows ending in this chunk: sums[j] - sums[j - window], as summarize does.
                ends = np.arange(window, all_sums.size)
                if ends.size:
                    window_counts = all_counts[ends] - all_counts[ends - window]
                    means = (all_sums[ends] - all_sums[ends - window]) / np.maximum(window_counts, 1)
                    means[window_counts == 0] = np.nan
                    self._keep_best(means)
            else:
                self._windows_one_by_one(np.concatenate((self.tail, values)))
        self.total = float(sums[-1])
        self.total_count = int(counts[-1])
        self.sums_tail = all_sums[-window:]
        self.counts_tail = all_counts[-window:]
        self.tail = np.concatenate((self.tail, values))[-window:]

    def _windows_one_by_one(self, buffer: np.ndarray) -> None:
        """Infinite scores: the means of the windows ending in the newest values, window by window."""
        import numpy as np

        window = self.window
        first_end = max(window - 1, self.tail.size)  # windows that end in the new values
        for block_start in range(first_end, buffer.size, 10_000):
            block_end = min(block_start + 10_000, buffer.size)
            view = np.lib.stride_tricks.sliding_window_view(
                buffer[block_start - window + 1 : block_end], window
            )
            valid = ~np.isnan(view)
            counts = valid.sum(axis=1)
            sums = np.where(valid, view, 0.0).sum(axis=1)
            means = sums / np.maximum(counts, 1)
            means[counts == 0] = np.nan
            self._keep_best(means)

    def _keep_best(self, means: np.ndarray) -> None:
        import numpy as np

        if means.size and not np.isnan(means).all():
            best = float(np.nanmax(means))
            if math.isnan(self.best) or best > self.best:
                self.best = best

    def result(self) -> ScoreSummary:
        import numpy as np

        if self.count <= self.window:
            return summarize(self.tail, self.window)
        if not self.valid:
            return ScoreSummary(count=self.count)
        with np.errstate(all="ignore"):
            tail = self.tail
            final_mean = float(np.nanmean(tail)) if (~np.isnan(tail)).any() else math.nan
            if self.valid == self.count and not self.has_inf:
                mean = self.total / self.count
                final_mean = float(tail.mean())
            else:
                mean = math.nan if self.has_inf else self.mean
            std = math.nan if self.has_inf else math.sqrt(self.m2 / self.valid)
        if self.has_inf:
            mean = _mean_with_infinities(self.min, self.max)
        return ScoreSummary(
            count=self.count,
            first=self.first,
            last=self.last,
            min=self.min,
            max=self.max,
            mean=_finite_or_none(mean),
            std=_finite_or_none(std),
            argmax=self.argmax,
            final_mean=_finite_or_none(final_mean),
            best_window_mean=_finite_or_none(self.best),
        )


def _mean_with_infinities(low: float, high: float) -> float:
    """The mean numpy gives for values including an infinity: that infinity, or NaN for both signs."""
    if math.isinf(low) and math.isinf(high) and low < 0 < high:
        return math.nan
    return high if math.isinf(high) and high > 0 else low
