"""Learning curves as JSON data, ready to draw: the curves of the web page and their CSV rows."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyhermes.storage import Experiment

__all__ = ["MAX_POINTS", "downsample", "curves_data", "CURVE_COLUMNS", "curve_rows"]

#: The most points of one line of :func:`curves_data`.
MAX_POINTS = 2000


def downsample(length: int, max_points: int = MAX_POINTS) -> Any:
    """Return the indices (a numpy array) of at most ``max_points`` evenly spread points of ``length``.

    The first and last points are always kept.
    """
    import numpy as np

    if length <= max_points:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, max(2, max_points)).round().astype(np.intp))


def _series(values: Any, positions: Any) -> list[float | None]:
    return [None if not math.isfinite(value) else value for value in values[positions].tolist()]


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
    scores smoothed over ``window`` (the trailing mean) and, for ``band="std"``, a band
    of the trailing standard deviation; ``raw`` adds the run's scores themselves.
    Every series holds at most ``max_points`` points (evenly spread episodes).

    Returns:
        ``{"window", "band", "group_by", "runs", "skipped", "lines": [{"label",
        "n", "x", "y", "low", "high"[, "raw"]}]}``; non-finite values are ``None``.

    Raises:
        ValueError: a bad ``band``, ``window``, ``min_runs`` or group key; no run has
            scores ("no scores to plot ...").
    """
    import numpy as np

    from pyhermes.curves import (
        BANDS,
        band_limits,
        group_label,
        grouped_curves,
        parse_group_by,
    )
    from pyhermes.plot import smoothen

    if band not in BANDS:
        raise ValueError(f"band must be one of 'std', 'ci95' or None, got {band!r}")
    keys = parse_group_by(group_by)
    lines: list[dict[str, Any]] = []
    if keys:
        for values, n, curve in grouped_curves(experiments, keys, window, min_runs):
            positions = downsample(len(curve.mean), max_points)
            limits = band_limits(curve, band)
            lines.append(
                {
                    "label": group_label(keys, values, n),
                    "n": n,
                    "x": positions.tolist(),
                    "y": _series(curve.mean, positions),
                    "low": None if limits is None else _series(limits[0], positions),
                    "high": None if limits is None else _series(limits[1], positions),
                }
            )
        with_scores = sum(line["n"] for line in lines)
    else:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        for experiment in experiments:
            scores = np.asarray(experiment.scores(), dtype=np.float64)
            if not scores.size:
                continue
            mean, std = smoothen(scores, window)
            positions = downsample(len(mean), max_points)
            line: dict[str, Any] = {
                "label": experiment.identifier,
                "n": 1,
                "x": positions.tolist(),
                "y": _series(mean, positions),
                "low": _series(mean - std, positions) if band == "std" else None,
                "high": _series(mean + std, positions) if band == "std" else None,
            }
            if raw:
                line["raw"] = _series(scores, positions)
            lines.append(line)
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
        "lines": lines,
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
