"""Learning curves of groups of runs: the mean of the runs' smoothed scores, one line per group.

Runs are grouped by the values of some of their command-line options (e.g. ``-lr``);
each group is drawn as the mean, over its runs, of the runs' smoothed scores, with an
optional band (standard deviation or 95% confidence interval of the mean).

The rules (the README copies them):

* **Groups.** ``group_by`` is ``None`` (all runs form one group), one key (``"-lr"``),
  a comma-separated string of keys (``"-lr,-gamma"``; spaces around the commas are
  ignored) or a sequence of keys. A run's group is the tuple of its values for those
  keys; a run without a key has the value ``None`` there. Values group by equality
  (``1`` and ``1.0`` are one group, the flag value ``True`` and the number ``1`` are
  not, all NaNs are one group). Groups are ordered by their values, key by key:
  numbers numerically (NaN after the other numbers), then booleans (``False`` first),
  then strings (alphabetically), then lists (element by element), then ``None`` last.
  A key that no run has is an error (it is most likely misspelt).
* **Labels.** ``-lr 0.001 (n=5)``; for several keys ``-lr 0.001, -gamma 0.99 (n=3)``;
  without ``group_by`` ``all runs (n=12)``. A missing value shows as ``–`` (an en
  dash), a list as its values joined by spaces. ``n`` counts the group's runs that
  have scores.
* **Smoothing.** Each run's scores are replaced by their trailing mean over at most
  ``window`` values, NaN scores skipped (:func:`nan_trailing_mean`, the rule of the
  score summaries: episode ``i`` shows the mean of the non-NaN scores among episodes
  ``max(0, i - window + 1) .. i`` of that run, NaN only when all of them are NaN). So
  the last value of a run's line with ``window=100`` is its ``final_mean``.
* **Runs without scores** are skipped: they are not drawn and not counted in ``n``.
* **Runs of different lengths.** Episodes are numbered from 0. At each episode, the
  group's line is the mean of the smoothed values of the runs that reached that
  episode and have a (non-NaN) smoothed value there (``n_i`` runs). The line stops
  after the last episode reached by at least ``min_runs`` of the group's runs, so its
  tail does not jump about as runs end one by one; equivalently, its length is the
  length of the group's ``min_runs``-th longest run. ``min_runs`` defaults to half
  the group's runs, rounded up (1 for a group of one or two runs, 2 for three or
  four, ...); ``min_runs=1`` draws the line up to the longest run; a ``min_runs``
  larger than the group requires all its runs. The statistics are accumulated run by
  run (:class:`GroupAccumulator`), so a group of any size costs the memory of its
  longest run, not of all its runs.
* **Bands.** ``band="std"``: the line ± the standard deviation (``ddof=0``) of the
  runs' smoothed values at each episode (zero where one run contributes).
  ``band="ci95"``: the line ± ``1.96 * s / sqrt(n_i)`` with ``s`` the sample standard
  deviation (``ddof=1``); there is no band at episodes with one contributing run, and
  none at all for a group where no episode has two. ``band=None``: no band.
* **Non-finite scores.** NaN scores are skipped, as the score summaries skip them
  (:mod:`pyhermes.summary`): a run with a NaN every 7th score has a line, and a group
  where one run has NaNs has values at every episode. Infinite scores are not skipped:
  they make the smoothed values of the windows holding them infinite or NaN, and with
  them the group's line at those episodes (a gap where it is NaN).

matplotlib is an optional dependency (the ``plot`` extra) and is imported only when
:func:`plot_grouped_scores` draws; it works without a display (Agg backend).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from pyhermes.curves.stats import (
    GroupAccumulator,
    GroupCurve,
    band_limits,
    check_min_runs,
    check_window,
    group_curve,
    nan_smoothen,
    nan_trailing_mean,
)
from pyhermes.plot import ExperimentLike, figure_and_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BANDS",
    "MISSING_VALUE_TEXT",
    "GroupCurve",
    "parse_group_by",
    "group_runs",
    "group_label",
    "group_curve",
    "grouped_curves",
    "GroupAccumulator",
    "nan_trailing_mean",
    "nan_smoothen",
    "band_limits",
    "plot_grouped_scores",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The valid values of ``band``.
BANDS: tuple[str | None, ...] = ("std", "ci95", None)

#: How a missing value (a run without the key) is shown in labels.
MISSING_VALUE_TEXT = "\u2013"


# What grouping and plotting need of a run: the same as a single-run plot.
RunLike = ExperimentLike


# --------------------------------------------------------------------------- grouping


def parse_group_by(group_by: str | Sequence[str] | None) -> list[str]:
    """Return the keys named by ``group_by``, in order and without repeats.

    ``None`` and an empty sequence give no keys (one group of all runs); a string is
    split at commas and the pieces are stripped of spaces; a sequence gives its items
    (each taken as one key).

    Raises:
        ValueError: ``group_by`` is a string naming no key (e.g. ``""``), or holds an
            empty key.
        TypeError: a key is not a string.
    """
    if group_by is None:
        return []
    if isinstance(group_by, str):
        pieces = [piece.strip() for piece in group_by.split(",")]
    else:
        pieces = list(group_by)
        for piece in pieces:
            if not isinstance(piece, str):
                raise TypeError(f"group_by keys must be strings, got {piece!r}")
    if any(not piece for piece in pieces):
        raise ValueError(f"group_by must name keys such as '-lr' or '-lr,-gamma', got {group_by!r}")
    return list(dict.fromkeys(pieces))


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _order_key(value: Any) -> tuple[Any, ...]:
    """Return the key that orders (and identifies) a value of a group.

    Ranks: numbers (NaN last among them), booleans, strings, lists, other values (by
    ``repr``), ``None``. Equal keys are one group.
    """
    if value is None:
        return (5,)
    if _is_bool(value):
        return (1, int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if number != number:  # NaN
            return (0, 1, 0.0)
        return (0, 0, number)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, (list, tuple)):
        return (3, tuple(_order_key(item) for item in value))
    return (4, repr(value))


def _frozen(value: Any) -> Any:
    """Return ``value`` with lists turned into tuples (recursively), so that it is hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(item) for item in value)
    return value


def _group_indices(
    arg_dicts: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> list[tuple[tuple[Any, ...], list[int]]]:
    """Group the positions of ``arg_dicts`` by their values for ``keys``; ordered groups."""
    if keys and arg_dicts:
        unknown = [key for key in keys if not any(key in args for args in arg_dicts)]
        if unknown:
            raise ValueError(
                f"no run has the argument {', '.join(map(repr, unknown))} to group by "
                f"(keys look like '-lr')"
            )
    groups: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[int]]] = {}
    for position, args in enumerate(arg_dicts):
        values = tuple(_frozen(args.get(key)) for key in keys)
        identity = tuple(_order_key(value) for value in values)
        if identity in groups:
            groups[identity][1].append(position)
        else:
            groups[identity] = (values, [position])
    return [groups[identity] for identity in sorted(groups)]


def group_runs(
    experiments: Iterable[RunLike], group_by: str | Sequence[str] | None
) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """Group runs by their values for the ``group_by`` keys (see the module docstring).

    Scores are not read: runs without scores are grouped like the others.

    Args:
        experiments: the runs; only their ``exec_args_dict`` is used.
        group_by: ``None``, a key, a comma-separated string of keys or a sequence of keys.

    Returns:
        ``[(values, runs), ...]`` ordered by ``values``: ``values`` is the tuple of the
        group's values, one per key (``None`` for a missing key, lists as tuples, the
        value of the group's first run where equal values differ in type, e.g. ``1`` and
        ``1.0``); ``runs`` are the group's runs in their given order. Without
        ``group_by``, one group ``((), all runs)``; no groups when there are no runs.

    Raises:
        ValueError: ``group_by`` names no key, or a key that none of the runs has.
        TypeError: a key is not a string.
    """
    keys = parse_group_by(group_by)
    runs = list(experiments)
    grouped = _group_indices([run.exec_args_dict for run in runs], keys)
    return [(values, [runs[i] for i in positions]) for values, positions in grouped]


def _value_text(value: Any) -> str:
    if value is None:
        return MISSING_VALUE_TEXT
    if isinstance(value, (list, tuple)):
        return " ".join(
            f"[{_value_text(item)}]" if isinstance(item, (list, tuple)) else _value_text(item)
            for item in value
        )
    return str(value)


def group_label(
    group_by: str | Sequence[str] | None, values: Sequence[Any], n: int | None = None
) -> str:
    """Return the legend label of a group, e.g. ``-lr 0.001, -gamma 0.99 (n=3)``.

    Args:
        group_by: the keys, as given to :func:`group_runs`.
        values: the group's values, one per key.
        n: the number of runs, appended as `` (n=...)`` when given.

    Returns:
        ``"<key> <value>"`` per key, joined by ``", "`` (``all runs`` without keys); a
        missing value is shown as ``–``, a list as its values joined by spaces.

    Raises:
        ValueError: ``values`` does not hold one value per key, or ``group_by`` is invalid
            (see :func:`parse_group_by`).
    """
    keys = parse_group_by(group_by)
    if len(values) != len(keys):
        raise ValueError(f"{len(keys)} keys but {len(values)} values: {keys!r}, {values!r}")
    text = ", ".join(f"{key} {_value_text(value)}" for key, value in zip(keys, values, strict=True))
    text = text or "all runs"
    return text if n is None else f"{text} (n={n})"


# --------------------------------------------------------------------------- statistics


def grouped_curves(
    experiments: Iterable[RunLike],
    group_by: str | Sequence[str] | None = None,
    window: int = 100,
    min_runs: int | None = None,
    *,
    max_groups: int | None = None,
) -> list[tuple[tuple[Any, ...], int, GroupCurve]]:
    """Read the runs' scores and return one curve per group, by the rules of the module docstring.

    The runs are read one at a time and folded into their group's
    :class:`GroupAccumulator`: ``experiments`` may be a generator of any length. Runs
    without scores are skipped and not counted.

    Returns:
        ``[(values, n, curve), ...]`` ordered by ``values`` (see :func:`group_runs`),
        ``n`` being the number of the group's runs with scores.

    Raises:
        ValueError: no run has scores ("no scores to plot ..."), ``group_by`` names no
            key or a key that none of the runs with scores has, ``window`` or
            ``min_runs`` is smaller than 1, more groups than ``max_groups`` (each holds
            the statistics of its longest run: a bound on memory).
        TypeError: ``window`` or ``min_runs`` is not an integer.
        RunFormatError: a run's scores file does not parse.
    """
    window = check_window(window)
    min_runs = check_min_runs(min_runs)
    keys = parse_group_by(group_by)
    groups: dict[tuple[Any, ...], tuple[tuple[Any, ...], GroupAccumulator]] = {}
    found: set[str] = set()
    seen = 0
    for run in experiments:
        seen += 1
        scores = np.asarray(run.scores(), dtype=np.float64)
        if not scores.size:
            continue
        args = run.exec_args_dict
        found.update(key for key in keys if key in args)
        values = tuple(_frozen(args.get(key)) for key in keys)
        identity = tuple(_order_key(value) for value in values)
        if identity not in groups:
            if max_groups is not None and len(groups) >= max_groups:
                raise ValueError(
                    f"grouping by {', '.join(keys)} makes more than {max_groups:,} groups: "
                    "group by fewer keys"
                )
            groups[identity] = (values, GroupAccumulator(window))
        groups[identity][1].add(scores)
    if not groups:
        raise ValueError(f"no scores to plot: none of the {seen} runs given has any scores")
    unknown = [key for key in keys if key not in found]
    if unknown:
        raise ValueError(
            f"no run has the argument {', '.join(map(repr, unknown))} to group by "
            f"(keys look like '-lr')"
        )
    return [
        (values, accumulator.runs, accumulator.curve(min_runs))
        for values, accumulator in (groups[identity] for identity in sorted(groups))
    ]


# --------------------------------------------------------------------------- plot


def plot_grouped_scores(
    experiments: Iterable[RunLike],
    group_by: str | Sequence[str] | None = None,
    window: int = 100,
    band: str | None = "std",
    ax: Axes | None = None,
    path: PathLike | None = None,
    *,
    min_runs: int | None = None,
    figsize: tuple[float, float] = (10, 6),
    dpi: float = 100,
) -> Figure:
    """Plot the smoothed learning curves of groups of runs, one line per group.

    The rules for groups, labels, smoothing, runs of different lengths and bands are
    those of the module docstring (:mod:`pyhermes.curves`). In short: the runs are
    grouped by their values for ``group_by``; each run's scores are smoothed with a
    trailing mean of at most ``window`` values; a group's line is, at each episode, the
    mean over the runs that reached it, and stops after the last episode reached by at
    least ``min_runs`` runs (default: half the group's runs, rounded up). Runs without
    scores are skipped and not counted. The x axis is labelled ``episode`` (from 0), the
    y axis ``score (mean of last {window})``, the legend ``-lr 0.001 (n=5)``.

    Args:
        experiments: the runs (:class:`pyhermes.storage.Experiment` or alike).
        group_by: ``None`` (one group), a key, a comma-separated string or a sequence of keys.
        window: the smoothing window, at least 1.
        band: ``"std"``, ``"ci95"`` or ``None`` (see the module docstring).
        ax: the axes to draw on; by default a new figure is made. When given, ``path``
            saves the whole figure holding ``ax`` at that figure's dpi.
        path: when given, the figure is saved there (format from the suffix, PNG when
            there is none) at the figure's dpi and without cropping, so a new figure's
            PNG is ``figsize * dpi`` pixels.
        min_runs: the fewest runs an episode of a group needs to be drawn, at least 1;
            ``None`` for half the group's runs, rounded up.
        figsize: size of a new figure, in inches (ignored when ``ax`` is given).
        dpi: resolution of a new figure (ignored when ``ax`` is given).

    Returns:
        The figure drawn on.

    Raises:
        ValueError: ``band`` is not one of ``"std"``, ``"ci95"``, ``None``; ``window`` or
            ``min_runs`` is smaller than 1; ``group_by`` names no key or a key that none
            of the runs with scores has; no run has scores ("no scores to plot ...").
        TypeError: ``window`` or ``min_runs`` is not an integer.
        RunFormatError: a run's scores file does not parse.
        MissingDependencyError: matplotlib is not installed.
    """
    if band not in BANDS:
        raise ValueError(f"band must be one of 'std', 'ci95' or None, got {band!r}")
    window = check_window(window)
    min_runs = check_min_runs(min_runs)
    keys = parse_group_by(group_by)

    curves = grouped_curves(experiments, keys, window, min_runs)

    fig, axes = figure_and_axes(ax, figsize, dpi)

    handles = []
    for values, n, curve in curves:
        x = np.arange(len(curve.mean))
        (line,) = axes.plot(x, curve.mean, label=group_label(keys, values, n))
        handles.append(line)
        limits = band_limits(curve, band)
        if limits is None:
            continue
        low, high = limits
        axes.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)

    axes.set_xlabel("episode")
    axes.set_ylabel(f"score (mean of last {window})")
    axes.legend(handles=handles)

    if path is not None:
        fig.savefig(os.fspath(path), dpi="figure")
    return fig
