"""A compare of learning curves over every run a filter matches: the data of ``/api/curves``.

Grouped, every matched run is read (no cap), one at a time, and folded into its
group's statistics (:class:`pyhermes.curves.GroupAccumulator`): memory is that of
the longest run per group, whatever the number of runs. One line per run needs a
drawing limit: at most :data:`MAX_LINES` lines, a random sample of the matched runs
when more match, seeded by the query so that the same query draws the same runs.
Every answer is downsampled to about :data:`POINT_BUDGET` numbers
(:func:`pyhermes.present.curve_data.fit_lines`), a chart of at most ~2 MB.

The default grouping of a compare of every match (:func:`default_group_keys`): the
exec-arg keys that differ between the matched runs, except the seeds
(:data:`SEED_KEYS`) and, when more than :data:`MAX_LINES` runs match, keys with
a value of its own for every run (a run name, an output folder: a seed by another name);
at most :data:`DEFAULT_GROUPS` groups.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pyhermes.present.curve_data import MAX_POINTS, fit_lines, group_line, run_line

if TYPE_CHECKING:
    import numpy as np

    from pyhermes.storage import Catalog

__all__ = [
    "MAX_LINES",
    "POINT_BUDGET",
    "MEMBERS_LIMIT",
    "BAND_LINES",
    "DEFAULT_GROUPS",
    "MAX_GROUPS",
    "SEED_KEYS",
    "ALL_RUNS",
    "default_group_keys",
    "compare_curves",
    "runs_to_add",
]

#: The most lines of one run each in a chart; more matching runs are sampled.
MAX_LINES = 100
#: About how many numbers one answer holds (x, mean, band and raw values of every line).
POINT_BUDGET = 150_000
#: The most groups of a compare grouped by default (see :func:`default_group_keys`).
DEFAULT_GROUPS = 30
#: The most groups of one compare (each holds the statistics of its longest run).
MAX_GROUPS = 500
#: Above this many lines, none has a band (drawn in time, and readable).
BAND_LINES = 30
#: Up to this many runs read, the answer says which line each run is in (``members``).
MEMBERS_LIMIT = 5_000
#: The keys never grouped by default: the same setting with another seed is one group.
SEED_KEYS = ("-seed", "--seed", "seed")
#: The ``group_by`` of one group of every run (``all runs (n=...)``).
ALL_RUNS = "*"


class _Run:
    """One matched run as the grouping reads it: identifier, arguments, scores read when asked."""

    __slots__ = ("identifier", "path", "exec_args_dict", "count", "unreadable")

    def __init__(self, identifier: str, path: str, args: dict[str, Any]) -> None:
        self.identifier = identifier
        self.path = path
        self.exec_args_dict = args
        self.count = 0
        self.unreadable = False

    def scores(self) -> np.ndarray:
        """The run's scores, read now (their number kept in ``count``); none, and
        ``unreadable``, when its scores file cannot be read."""
        import numpy as np

        from pyhermes import rundir

        try:
            values = rundir.read_scores(rundir.scores_path(self.path, self.identifier))
        except (OSError, rundir.RunFormatError):
            self.unreadable = True
            values = np.empty(0, dtype=np.float64)
        self.count = int(values.size)
        return values


def _condition(catalog: Catalog, where: str | None, identifiers: Sequence[str] | None) -> Any:
    from pyhermes.index.query.compare import scoped
    from pyhermes.index.query.filters import run
    from pyhermes.index.query.grammar import as_filter

    condition = run.identifier.isin(list(identifiers)) if identifiers else as_filter(where or None)
    return scoped(catalog, condition)


def default_group_keys(
    catalog: Catalog, where: str | None, identifiers: Sequence[str] | None = None
) -> list[str]:
    """Return the keys a compare of the matched runs groups by when not told.

    The args that differ between them, except seeds (:data:`SEED_KEYS`) and, above
    :data:`MAX_LINES` runs, keys with a value of its own for every run. When those
    would make more than :data:`DEFAULT_GROUPS` groups, keys are taken one by one,
    most values first (the swept settings, rather than flags), each only if it splits the groups further and keeps them at
    most :data:`DEFAULT_GROUPS` (the group-by box shows what was chosen). Options
    (``-x``) come first, then by name.

    Raises:
        QueryError: a malformed filter.
    """
    from pyhermes.index.query.compare import arg_spread, arg_values

    condition = _condition(catalog, where, identifiers)
    total, spread = arg_spread(catalog, condition)
    candidates = [
        item
        for item in spread
        if (item.values > 1 or item.runs < total)
        and item.key not in SEED_KEYS
        and not (total > MAX_LINES and item.values == item.runs == total)
    ]
    bound = math.prod(item.values + (item.runs < total) for item in candidates)
    keys = [item.key for item in candidates]
    if bound > DEFAULT_GROUPS:
        candidates.sort(key=lambda item: (-(item.values + (item.runs < total)), item.key))
        per_run = list(arg_values(catalog, condition, keys).values())
        absent = [{} for _ in range(total - len(per_run))]  # runs with none of the keys
        runs = per_run + absent
        keys = []
        groups = 1
        for item in candidates:
            trial = [*keys, item.key]
            count = len({tuple(args.get(key, "\x00") for key in trial) for args in runs})
            if groups < count <= DEFAULT_GROUPS:
                keys, groups = trial, count
    return sorted(keys, key=lambda key: (not key.startswith("-"), key.lstrip("-"), key))


def _sample_seed(where: str | None, identifiers: Sequence[str] | None, sort: str) -> int:
    text = "\x1f".join([where or "", ",".join(identifiers or ()), sort])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_value_text(item) for item in value)
    return "" if value is True else str(value)


def _arg_text(key: str, value: Any) -> str:
    text = _value_text(value)
    return f"{key} {text}" if text else key


def _common_args(runs: Sequence[_Run]) -> dict[str, Any]:
    """The args of a line: the value where its runs agree, ``None`` where they differ or some lack it."""
    varies = object()
    common: dict[str, Any] = {}
    for position, run in enumerate(runs):
        args = run.exec_args_dict
        if position == 0:
            common = dict(args)
            continue
        for key in list(common):
            if common[key] is not varies and (key not in args or args[key] != common[key]):
                common[key] = varies
        for key in args:
            common.setdefault(key, varies)
    return {key: (None if value is varies else _value_text(value) or True) for key, value in common.items()}


def _differing(lines_args: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys whose value is not the same for every line (a line without it, or whose runs
    disagree on it, differs); options first, then by name."""
    values: dict[str, set[Any]] = {}
    for args in lines_args:
        for key, value in args.items():
            values.setdefault(key, set()).add(value)
    keys = [
        key
        for key, seen in values.items()
        if len(seen) > 1 or None in seen or any(key not in args for args in lines_args)
    ]
    return sorted(keys, key=lambda key: (not key.startswith("-"), key.lstrip("-"), key))


def _names(lines: list[dict[str, Any]], differing: Sequence[str], group_keys: Sequence[str]) -> None:
    """Name each line by the args in which it differs: a run's line ends with its identifier
    (``-lr 0.01, -seed 3 · 2023_...``), which tells apart runs whose args agree; a group's is its
    label, followed by the other args its runs share that differ between the lines."""
    for line in lines:
        args = line["args"]
        text = ", ".join(
            _arg_text(key, args[key])
            for key in differing
            if key in args and args[key] is not None and key not in group_keys
        )
        if "identifier" in line:
            line["name"] = f"{text} · {line['identifier']}" if text else line["identifier"]
        else:
            line["name"] = f"{line['label']}: {text}" if text else line["label"]


def compare_curves(
    catalog: Catalog,
    where: str | None,
    identifiers: Sequence[str] | None,
    sort: str,
    options: Mapping[str, Any],
    *,
    full: bool = False,
    max_lines: int = MAX_LINES,
) -> dict[str, Any]:
    """Return the curves of a compare: every run matching ``where`` (or named by ``identifiers``).

    ``options``: ``group_by`` (keys, comma-separated; ``""`` one line per run;
    :data:`ALL_RUNS` one group of every run), ``window``, ``band``, ``min_runs``,
    ``max_points`` and ``raw`` (see :func:`pyhermes.present.curves_data`). ``full``
    keeps every point of every line (the CSV download); else the answer is fitted to
    :data:`POINT_BUDGET` numbers. One line per run draws at most ``max_lines`` runs.

    Returns:
        ``{"window", "band", "group_by", "runs", "matched", "truncated", "sampled",
        "skipped", "unreadable", "differing", "bands_hidden", "lines", "members"}``:
        ``runs`` the runs read, ``matched`` the runs matching, ``truncated`` whether
        fewer were drawn than matched (a sample: ``sampled`` is then its size),
        ``skipped`` the runs read without scores (``unreadable`` of them could not be
        read), ``differing`` the arg keys whose values differ between the lines,
        ``bands_hidden`` whether the lines are too many (above :data:`BAND_LINES`) to
        have bands (``full`` keeps them). Each line adds to those of
        :func:`~pyhermes.present.curve_data.curves_data` its ``name`` (the args in which
        it differs), ``args`` (its runs' args: ``None`` where they differ) and, for a
        run, ``identifier``. ``members`` maps each run's identifier to its line's
        position (up to :data:`MEMBERS_LIMIT` runs; else ``None``).

    Raises:
        QueryError: a malformed filter or an unknown sort key.
        ValueError: a bad window, band or group key, or no run has scores.
    """
    from pyhermes import rundir
    from pyhermes.curves import BANDS, group_label, group_runs, grouped_curves, parse_group_by
    from pyhermes.index.query.compare import arg_lines

    band = options["band"]
    if band not in BANDS:
        raise ValueError(f"band must be one of 'std', 'ci95' or None, got {band!r}")
    window = int(options["window"])
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    group_by = (options.get("group_by") or "").strip()
    grouped = bool(group_by)
    keys = [] if group_by == ALL_RUNS else parse_group_by(group_by) if grouped else []

    condition = _condition(catalog, where, identifiers)
    rows = catalog.run_rows(condition, sort or None)
    matched = len(rows)
    if not grouped and matched > max_lines:
        sampler = random.Random(_sample_seed(where, identifiers, sort))
        chosen = sorted(sampler.sample(range(matched), max_lines))
        rows = [rows[position] for position in chosen]
        lines_of = arg_lines(catalog, catalog.ids_in([row[0] for row in rows]))
    else:
        lines_of = arg_lines(catalog, condition)
    runs = [
        _Run(path.rpartition("/")[2], path, rundir.exec_args_dict(lines_of.get(run_id, ())))
        for run_id, path, _commit, _start in rows
    ]
    lines: list[dict[str, Any]] = []
    if grouped:
        # The runs are read one at a time as the groups fold them in; none is kept.
        curves = grouped_curves(runs, keys, window, options.get("min_runs"), max_groups=MAX_GROUPS)
        with_scores = [run for run in runs if run.count]
        members_of = group_runs(with_scores, keys)
        for (values, n, curve), (_, members) in zip(curves, members_of, strict=True):
            line = group_line(group_label(keys, values, n), n, curve, band)
            line["args"] = _common_args(members)
            line["runs_of"] = members
            lines.append(line)
    else:
        for run in runs:
            scores = run.scores()
            if not scores.size:
                continue
            line = run_line(run.identifier, scores, window, band, raw=bool(options.get("raw")))
            line["identifier"] = run.identifier
            line["args"] = _common_args([run])
            line["runs_of"] = [run]
            lines.append(line)
        if not lines:
            raise ValueError(f"no scores to plot: none of the {len(runs)} runs given has any scores")
        with_scores = [run for run in runs if run.count]
    differing = _differing([line["args"] for line in lines])
    _names(lines, differing, keys)
    members: dict[str, int] | None = {} if len(with_scores) <= MEMBERS_LIMIT else None
    for position, line in enumerate(lines):
        runs_of = line.pop("runs_of")
        if members is not None:
            members.update((run.identifier, position) for run in runs_of)
    bands_hidden = len(lines) > BAND_LINES and band is not None and not full
    if bands_hidden:
        for line in lines:
            line["low"] = line["high"] = None
    max_points = None if full else min(int(options.get("max_points") or MAX_POINTS), MAX_POINTS)
    return {
        "window": window,
        "band": band,
        "group_by": [ALL_RUNS] if grouped and not keys else keys,
        "runs": len(runs),
        "matched": matched,
        "truncated": len(runs) < matched,
        "sampled": len(runs) if len(runs) < matched else None,
        "skipped": len(runs) - len(with_scores),
        "unreadable": sum(run.unreadable for run in runs),
        "differing": differing,
        "bands_hidden": bands_hidden,
        "lines": fit_lines(lines, max_points, None if full else POINT_BUDGET),
        "members": members,
    }


def runs_to_add(catalog: Catalog, text: str, limit: int = MAX_LINES) -> tuple[list[str], int]:
    """Return the identifiers of the runs ``text`` names, and how many it names in all.

    ``text`` is identifiers (or unique prefixes of them) separated by commas or spaces;
    else a filter (``-lr < 0.01``), whose first ``limit`` matches by start time are taken.

    Raises:
        QueryError: a prefix matches several runs, or ``text`` is neither identifiers of
            runs nor a valid filter (the filter's message).
    """
    from pyhermes.errors import QueryError
    from pyhermes.index.query.filters import run

    tokens = [token for token in text.replace(",", " ").split() if token]
    found: list[str] = []
    for token in tokens:
        matches = catalog.find(run.identifier.startswith(token), limit=2)
        if len(matches) > 1:
            raise QueryError(f"{token!r} is the start of more than one run's identifier; give more of it")
        if not matches:
            break
        found.append(matches[0].identifier)
    else:
        if found:
            return found, len(found)
    total = catalog.count(text)
    return [experiment.identifier for experiment in catalog.find(text, "start_time", limit)], total
