"""Score summaries against their naive definitions."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pyhermes.summary import ScoreSummary, summarize

finite = st.floats(-1e4, 1e4, allow_nan=False)
any_score = st.one_of(finite, st.just(math.nan), st.just(math.inf), st.just(-math.inf))


def naive(values: list[float], window: int = 100) -> dict[str, float | int | None]:
    numbers = [v for v in values if not math.isnan(v)]
    if not numbers:
        return {"count": len(values)}

    def mean(items: list[float]) -> float | None:
        present = [v for v in items if not math.isnan(v)]
        if not present:
            return None
        with np.errstate(all="ignore"):
            result = float(np.mean(present))
        return None if math.isnan(result) else result

    size = min(window, len(values))
    windows = [mean(values[i : i + size]) for i in range(len(values) - size + 1)]
    windows = [w for w in windows if w is not None]
    finite_numbers = all(math.isfinite(v) for v in numbers)
    return {
        "count": len(values),
        "first": numbers[0],
        "last": numbers[-1],
        "min": min(numbers),
        "max": max(numbers),
        "mean": mean(numbers),
        "std": float(np.std(numbers)) if finite_numbers else None,
        "argmax": values.index(max(numbers)),
        "final_mean": mean(values[-window:]),
        "best_window_mean": max(windows) if windows else None,
    }


def close(a: float | int | None, b: float | int | None) -> bool:
    if a is None or b is None:
        return a is b
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(b)) + 1e-7


@given(st.lists(finite, max_size=400))
def test_finite_scores(values):
    summary = summarize(np.array(values))
    expected = naive(values)
    for name in ScoreSummary.field_names():
        assert close(getattr(summary, name), expected.get(name)), name


@given(st.lists(any_score, max_size=250))
def test_scores_with_nan_and_inf(values):
    summary = summarize(np.array(values))
    expected = naive(values)
    for name in ("count", "first", "last", "min", "max", "argmax", "std"):
        assert close(getattr(summary, name), expected.get(name)), name


@given(
    st.lists(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False), min_size=1, max_size=400),
    st.integers(1, 150),
)
def test_the_finite_summary_is_numpys_std_and_mean_to_the_bit(values, window):
    array = np.array(values, dtype=np.float64)
    summary = summarize(array, window)
    assert summary.std == float(array.std()) and summary.final_mean == float(array[-window:].mean())
    assert summary.mean == float(np.cumsum(array)[-1] / array.size)
