"""Learning curves as JSON data, ready to draw: the lines of the web page's charts and their CSV rows.

A line is ``{"label", "n", "x", "y", "low", "high"[, "raw"]}`` plus its summary at
full resolution (``episodes``, ``final``, ``best``, ``best_at``). Long lines are
downsampled for drawing by :func:`downsample_extremes`: the first and last points,
and in every bucket of episodes between them the lowest and the highest value, so
that a spike survives where evenly spread points would step over it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from pyhermes.curves import GroupCurve
    from pyhermes.storage import Experiment

__all__ = [
    "MAX_POINTS",
    "ROUND_ABOVE",
    "downsample",
    "downsample_extremes",
    "run_line",
    "group_line",
    "fit_lines",
    "curves_data",
    "CURVE_COLUMNS",
    "curve_rows",
]

#: The most points of one line of :func:`curves_data`.
MAX_POINTS = 2000

#: An answer holding more numbers than this has them rounded to 7 significant digits of
#: each series' largest magnitude (see :func:`fit_lines`): half the bytes, nothing visible lost.
ROUND_ABOVE = 20_000


def downsample(length: int, max_points: int = MAX_POINTS) -> Any:
    """Return the indices (a numpy array) of at most ``max_points`` evenly spread points of ``length``.

    The first and last points are always kept.
    """
    import numpy as np

    if length <= max_points:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, max(2, max_points)).round().astype(np.intp))


def downsample_extremes(values: np.ndarray, max_points: int = MAX_POINTS) -> Any:
    """Return the indices (increasing) of at most ``max_points`` points of ``values`` worth drawing.

    All of them when there are at most ``max_points``. Else the first and the last,
    and between them, in each of ``(max_points - 2) // 2`` buckets of consecutive
    episodes, the positions of the lowest and the highest value (NaN ignored; a bucket
    of NaNs only keeps one, a gap in the line). Fewer than 4 points leave no room for
    a bucket: they are spread evenly (:func:`downsample`).
    """
    import numpy as np

    length = len(values)
    if length <= max_points:
        return np.arange(length)
    if max_points < 4:
        return downsample(length, max_points)
    inner = np.asarray(values[1:-1], dtype=np.float64)
    wanted = (max_points - 2) // 2
    size = -(-inner.size // wanted)
    buckets = -(-inner.size // size)
    padded = np.full(buckets * size, np.nan)
    padded[: inner.size] = inner
    table = padded.reshape(buckets, size)
    missing = np.isnan(table)
    lows = np.where(missing, np.inf, table).argmin(axis=1)
    highs = np.where(missing, -np.inf, table).argmax(axis=1)
    starts = np.arange(buckets) * size + 1
    chosen = np.concatenate(([0], starts + lows, starts + highs, [length - 1]))
    return np.unique(np.minimum(chosen, length - 1))


def _series(values: np.ndarray, positions: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(value) else value for value in values[positions].tolist()]


def _summary(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """The full-resolution summary of a line: its episodes, last and best finite values."""
    import numpy as np

    finite = np.flatnonzero(np.isfinite(y))
    if not finite.size:
        return {"episodes": int(y.size), "final": None, "best": None, "best_at": None}
    best = finite[np.argmax(y[finite])]
    return {
        "episodes": int(y.size),
        "final": float(y[finite[-1]]),
        "best": float(y[best]),
        "best_at": int(x[best]),
    }


def run_line(
    label: str, scores: np.ndarray, window: int, band: str | None, *, raw: bool = False
) -> dict[str, Any]:
    """Return the full-resolution line of one run: its scores smoothed (NaN skipped) over
    ``window``, for ``band="std"`` the trailing standard deviation, ``raw`` the scores.

    The arrays stay numpy arrays until :func:`fit_lines` downsamples them.
    """
    import numpy as np

    from pyhermes.curves import nan_smoothen

    mean, std = nan_smoothen(scores, window)
    x = np.arange(mean.size)
    line: dict[str, Any] = {
        "label": label,
        "n": 1,
        "x": x,
        "y": mean,
        "low": mean - std if band == "std" else None,
        "high": mean + std if band == "std" else None,
        **_summary(x, mean),
    }
    if raw:
        line["raw"] = np.asarray(scores, dtype=np.float64)
    return line


def group_line(label: str, n: int, curve: GroupCurve, band: str | None) -> dict[str, Any]:
    """Return the full-resolution line of one group (see :mod:`pyhermes.curves`)."""
    import numpy as np

    from pyhermes.curves import band_limits

    limits = band_limits(curve, band)
    x = np.arange(curve.mean.size)
    return {
        "label": label,
        "n": n,
        "x": x,
        "y": curve.mean,
        "low": None if limits is None else limits[0],
        "high": None if limits is None else limits[1],
        **_summary(x, curve.mean),
    }


def _rounded(values: np.ndarray, digits: int) -> np.ndarray:
    import numpy as np

    finite = np.abs(values[np.isfinite(values)])
    if not finite.size or not finite.max():
        return values
    decimals = digits - 1 - int(math.floor(math.log10(float(finite.max()))))
    return np.round(values, decimals)


def fit_lines(
    lines: list[dict[str, Any]], max_points: int | None, budget: int | None = None
) -> list[dict[str, Any]]:
    """Downsample the full-resolution lines for drawing, in place, and return them as JSON data.

    Each line keeps at most ``max_points`` points (:func:`downsample_extremes`, picked
    on the raw scores when it has them, else on its mean); with ``budget``, fewer, so
    that the whole answer holds about ``budget`` numbers (at least 50 points a line).
    Above :data:`ROUND_ABOVE` numbers the values are rounded to 7 significant digits of
    each series' largest magnitude. ``max_points`` ``None`` keeps every point (the CSV).
    Non-finite values become ``None``.
    """
    import numpy as np

    series = ("y", "low", "high", "raw")
    numbers = sum(
        1 + sum(line.get(name) is not None for name in series) for line in lines
    )
    points = max_points
    if points is not None and budget is not None and numbers:
        points = min(points, max(50, budget // numbers))
    total = 0
    for line in lines:
        picked_on = line.get("raw") if line.get("raw") is not None else line["y"]
        positions = (
            np.arange(len(line["x"])) if points is None else downsample_extremes(picked_on, points)
        )
        total += positions.size * (1 + sum(line.get(name) is not None for name in series))
        line["positions"] = positions
    round_digits = 7 if total > ROUND_ABOVE and max_points is not None else None
    for line in lines:
        positions = line.pop("positions")
        line["x"] = np.asarray(line["x"])[positions].tolist()
        for name in series:
            if line.get(name) is not None:
                values = line[name] if round_digits is None else _rounded(line[name], round_digits)
                line[name] = _series(values, positions)
    return lines


def curves_data(
    experiments: Sequence[Experiment],
    group_by: str | Sequence[str] | None = None,
    window: int = 100,
    band: str | None = "std",
    *,
    min_runs: int | None = None,
    max_points: int = MAX_POINTS,
    raw: bool = False,
) -> dict[str, Any]:
    """Return the learning curves of ``experiments`` as JSON data, ready to draw.

    With ``group_by`` the runs are grouped and each group is the mean of its runs'
    smoothed scores with a band, by the rules of :mod:`pyhermes.curves` (the same as
    :meth:`ExperimentList.plot_scores`). Without it, each run is its own line: its
    scores smoothed over ``window`` (the trailing mean, NaN scores skipped) and, for
    ``band="std"``, a band of the trailing standard deviation; ``raw`` adds the run's
    scores themselves. Every series holds at most ``max_points`` points
    (:func:`downsample_extremes`).

    Returns:
        ``{"window", "band", "group_by", "runs", "skipped", "lines": [{"label",
        "n", "x", "y", "low", "high"[, "raw"], "episodes", "final", "best",
        "best_at"}]}``; non-finite values are ``None``.

    Raises:
        ValueError: a bad ``band``, ``window``, ``min_runs`` or group key; no run has
            scores ("no scores to plot ...").
    """
    import numpy as np

    from pyhermes.curves import BANDS, group_label, grouped_curves, parse_group_by

    if band not in BANDS:
        raise ValueError(f"band must be one of 'std', 'ci95' or None, got {band!r}")
    keys = parse_group_by(group_by)
    lines: list[dict[str, Any]] = []
    if keys:
        for values, n, curve in grouped_curves(experiments, keys, window, min_runs):
            lines.append(group_line(group_label(keys, values, n), n, curve, band))
        with_scores = sum(line["n"] for line in lines)
    else:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        for experiment in experiments:
            scores = np.asarray(experiment.scores(), dtype=np.float64)
            if scores.size:
                lines.append(run_line(experiment.identifier, scores, window, band, raw=raw))
        if not lines:
            raise ValueError(
                f"no scores to plot: none of the {len(experiments)} runs given has any scores"
            )
        with_scores = len(lines)
    return {
        "window": window,
        "band": band,
        "group_by": keys,
        "runs": len(experiments),
        "skipped": len(experiments) - with_scores,
        "lines": fit_lines(lines, max_points),
    }


#: The columns of the CSV form of curves: one row per point of a line.
CURVE_COLUMNS = ["label", "n", "episode", "mean", "low", "high"]


def curve_rows(data: dict[str, Any]) -> Iterator[list[Any]]:
    """Return the rows under :data:`CURVE_COLUMNS` of the lines of :func:`curves_data` (lazily)."""
    return (
        [line["label"], line["n"], x, y, low, high]
        for line in data["lines"]
        for x, y, low, high in zip(
            line["x"],
            line["y"],
            line["low"] or [None] * len(line["x"]),
            line["high"] or [None] * len(line["x"]),
            strict=True,
        )
    )
