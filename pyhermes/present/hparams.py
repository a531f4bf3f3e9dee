"""The hyperparameter view as data: the exec args that vary among the runs a filter matches,
one score summary, as the axes of a parallel-coordinates plot and a scatter of one arg.

:func:`hparams_view` returns the answer of ``/api/params`` (the Params page draws it
with plotly's ``parcoords`` and ``scatter``). The values come from one SQL statement
(:func:`pyhermes.index.query.hparams.hparam_rows`); here they become axes:

* a flag (a key never given a value): ``0`` absent, ``1`` present;
* a key whose every value is a number: a numeric axis, on a log scale (``log10``) when
  every value is positive and they span two decades or more; a run without the key sits
  below the others, at the tick ``absent``;
* any other key: one category per distinct text (sorted, texts of numbers by their
  numbers; ``absent`` first).

Each axis gives, run by run, the value as the run has it (``raw``: a number, a text,
``True`` for a flag, ``None`` when absent) and its position on the axis (``values``),
with the ticks to draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyhermes.errors import QueryError

if TYPE_CHECKING:
    from pyhermes.index.query.hparams import HparamRows, KeyStats
    from pyhermes.storage import Catalog

__all__ = [
    "hparams_view", "HPARAM_SUMMARIES", "DEFAULT_SUMMARY", "MAX_RUNS", "MAX_AXES", "ABSENT",
    "is_seed",
]

#: The score summaries a view can plot, in the order of its control.
HPARAM_SUMMARIES = (
    "final_mean", "best_window_mean", "max", "mean", "last", "min", "first", "std", "count", "argmax",
)
#: The summary when the URL does not say.
DEFAULT_SUMMARY = "final_mean"
#: The most runs drawn: above it, a sample (chosen by a hash of the run id) is drawn.
MAX_RUNS = 2000
#: The most arg axes drawn (the summary's comes on top).
MAX_AXES = 30
#: Categories a text axis labels at most (every n-th beyond).
MAX_TICKS = 30
#: The tick of the runs that lack a key.
ABSENT = "absent"
#: The span (largest / smallest value) from which a positive numeric axis is logarithmic.
LOG_SPAN = 100.0


def is_seed(key: str) -> bool:
    """Whether ``key`` names a random seed (``-seed``, ``--seed``, ``seed``)."""
    return key.lstrip("-").lower() == "seed"


def _order(key: str) -> tuple[bool, bool, str, str]:
    """Options first (as the runs table orders keys), seeds after the other options."""
    return (not key.startswith("-"), is_seed(key), key.lstrip("-"), key)


def _number_text(value: float) -> str:
    return f"{value:.6g}"


def _kind(stats: KeyStats) -> str:
    if stats.high == "":
        return "flag"
    if stats.non_numbers == 0:
        return "number"
    return "text"


def _flag_axis(key: str, present: list[bool]) -> dict[str, Any]:
    return {
        "key": key, "kind": "flag", "log": False,
        "raw": [True if here else None for here in present],
        "values": [1 if here else 0 for here in present],
        "tickvals": [0, 1], "ticktext": [ABSENT, "present"], "range": [0, 1],
    }


def _number_axis(key: str, numbers: list[float | None]) -> dict[str, Any]:
    given = [number for number in numbers if number is not None]
    distinct = sorted(set(given))
    log = bool(distinct) and distinct[0] > 0 and distinct[-1] / distinct[0] >= LOG_SPAN

    def place(number: float) -> float:
        return math.log10(number) if log else number

    low, high = (place(distinct[0]), place(distinct[-1])) if distinct else (0.0, 1.0)
    if len(distinct) <= 12:
        ticks = [(place(number), _number_text(number)) for number in distinct]
    elif log:
        decades = range(math.floor(low), math.ceil(high) + 1)
        ticks = [(float(power), _number_text(10.0**power)) for power in decades if low <= power <= high]
    else:
        ticks = [(low + (high - low) * step / 5, _number_text(low + (high - low) * step / 5))
                 for step in range(6)]
    absent_at = None
    if len(given) < len(numbers):
        absent_at = low - max(high - low, 1.0) * 0.15
        ticks.insert(0, (absent_at, ABSENT))
    bottom = absent_at if absent_at is not None else low
    if bottom == high:  # one value: an axis needs a span
        bottom, high = bottom - 0.5, high + 0.5
    return {
        "key": key, "kind": "number", "log": log,
        "raw": numbers,
        "values": [absent_at if number is None else place(number) for number in numbers],
        "tickvals": [at for at, _ in ticks], "ticktext": [label for _, label in ticks],
        "range": [bottom, high],
    }


def _natural(text: str) -> tuple[int, list[float], str]:
    """Sort key of a category: texts of numbers (``64 64``, ``256``) by their numbers, first."""
    try:
        return (0, [float(part) for part in text.split()], text)
    except ValueError:
        return (1, [], text)


def _text_axis(key: str, texts: list[str | None]) -> dict[str, Any]:
    categories = sorted({text for text in texts if text is not None}, key=_natural)
    if len(categories) < len(set(texts)):  # some run lacks the key
        categories.insert(0, ABSENT)
    code = {category: number for number, category in enumerate(categories)}
    step = max(1, math.ceil(len(categories) / MAX_TICKS))
    shown = range(0, len(categories), step)
    return {
        "key": key, "kind": "text", "log": False,
        "raw": texts,
        "values": [code[ABSENT if text is None else text] for text in texts],
        "tickvals": list(shown), "ticktext": [categories[at] for at in shown],
        "categories": categories, "range": [0, max(len(categories) - 1, 1)],
    }


def _axis(stats: KeyStats, rows: HparamRows, run_ids: Sequence[int]) -> dict[str, Any]:
    kind = _kind(stats)
    found = [rows.args.get(run_id, {}).get(stats.key) for run_id in run_ids]
    if kind == "flag":
        return _flag_axis(stats.key, [item is not None for item in found])
    numbers = [None if item is None else item[1] for item in found]
    if kind == "number" and all(number is None or math.isfinite(number) for number in numbers):
        return _number_axis(stats.key, numbers)
    # A key that is a flag in some runs and has a value in others: the flag is its own text.
    texts = [None if item is None else (item[0] if item[0] is not None else "(flag)") for item in found]
    return _text_axis(stats.key, texts)


def _scatter(axis: dict[str, Any]) -> dict[str, Any]:
    """The x values of the scatter of one axis: numbers (linear or log), or categories."""
    if axis["kind"] == "number":
        return {"key": axis["key"], "type": "log" if axis["log"] else "linear", "x": axis["raw"],
                "categories": None, "missing": sum(value is None for value in axis["raw"])}
    labels = axis.get("categories") or axis["ticktext"]
    return {"key": axis["key"], "type": "category", "categories": labels,
            "x": [labels[int(code)] for code in axis["values"]], "missing": 0}


def _constant(stats: KeyStats) -> str:
    return stats.key if stats.high == "" else f"{stats.key} {stats.low}"


def hparams_view(
    catalog: Catalog,
    where: str | None = None,
    summary: str = DEFAULT_SUMMARY,
    x: str | None = None,
    *,
    max_runs: int = MAX_RUNS,
) -> dict[str, Any]:
    """Return the hyperparameter view of the runs of ``catalog`` matching ``where``, as JSON data.

    Keys of the answer: ``where``, ``summary``, ``summaries`` (the choices), ``x`` (the
    arg of the scatter: ``x`` when it varies, else the arg that tells most of the
    summary's variance, see :func:`_most_telling`), ``matched``,
    ``scored`` (runs with scores and a value of the summary), ``without_scores``,
    ``shown``, ``sampled``, ``varying`` (the keys that vary, in axis order),
    ``constant`` (``"-bs 64"``, ``"train"``: what every matched run has alike), ``axes``
    (see the module), ``dropped_axes``, ``identifiers``, ``paths`` and ``scores`` (run by
    run), ``scatter`` (``key``, ``type``, ``x``, ``categories``, ``missing``),
    ``message`` (why nothing is drawn, or ``None``) and ``notes`` (what the reader must
    know about what is drawn: runs left out, a sample).

    Raises:
        QueryError: a malformed filter, a summary that is none of
            :data:`HPARAM_SUMMARIES`, or ``max_runs`` below 1.
    """
    from pyhermes.index.query.grammar import as_filter
    from pyhermes.index.query.hparams import hparam_rows

    if summary not in HPARAM_SUMMARIES:
        raise QueryError(f"unknown score summary {summary!r}; expected one of {', '.join(HPARAM_SUMMARIES)}")
    rows = hparam_rows(catalog, as_filter(where or None), summary, max_runs)
    not_finite, keep = _finite(rows.scores)
    varying = sorted((stats for stats in rows.keys if stats.varies(rows.matched)),
                     key=lambda stats: _order(stats.key))
    kept = varying[:MAX_AXES]
    run_ids = [rows.run_ids[at] for at in keep]
    answer: dict[str, Any] = {
        "where": where or "",
        "summary": summary,
        "summaries": list(HPARAM_SUMMARIES),
        "matched": rows.matched,
        "scored": rows.scored - not_finite,
        "without_scores": rows.matched - rows.scored + not_finite,
        "shown": len(run_ids),
        "sampled": rows.sampled,
        "varying": [stats.key for stats in varying],
        "constant": [_constant(stats) for stats in sorted(rows.keys, key=lambda s: _order(s.key))
                     if not stats.varies(rows.matched)],
        "dropped_axes": len(varying) - len(kept),
        "identifiers": [rows.identifiers[at] for at in keep],
        "paths": [rows.paths[at] for at in keep],
        "scores": [rows.scores[at] for at in keep],
        "axes": [],
        "x": None,
        "scatter": None,
        "message": None,
        "notes": [],
    }
    answer["message"] = _message(answer, summary)
    if answer["message"] is None:
        answer["axes"] = [_axis(stats, rows, run_ids) for stats in kept]
        chosen = next((axis for axis in answer["axes"] if axis["key"] == x), None)
        chosen = chosen or _most_telling(answer["axes"], answer["scores"])
        answer["x"] = chosen["key"]
        answer["scatter"] = _scatter(chosen)
    answer["notes"] = _notes(answer, summary, x)
    return answer


def _most_telling(axes: Sequence[dict[str, Any]], scores: Sequence[float]) -> dict[str, Any]:
    """The axis whose values tell most of the scores: the largest share of their variance
    between its values (eta squared; a numeric axis of many values in ten bins), seeds
    last. The scatter shows it when the URL names none."""
    import numpy as np

    values = np.asarray(scores, dtype=np.float64)
    centred = values - values.mean()
    spread = float(centred @ centred) or 1.0

    def share(axis: dict[str, Any]) -> tuple[bool, float]:
        positions = np.asarray(axis["values"], dtype=np.float64)
        distinct, groups = np.unique(positions, return_inverse=True)
        if len(distinct) > 12:
            width = (distinct[-1] - distinct[0]) / 10 or 1.0
            groups = np.minimum(((positions - distinct[0]) / width).astype(np.int64), 9)
        sizes = np.bincount(groups)
        sums = np.bincount(groups, weights=centred)
        used = sizes > 0
        between = float((sums[used] ** 2 / sizes[used]).sum())
        return (not is_seed(axis["key"]), between / spread)

    return max(axes, key=share)


def _finite(scores: Sequence[float]) -> tuple[int, list[int]]:
    """(how many scores are not finite, the positions of those that are): a summary that is
    not a number (every score NaN) counts as no score."""
    keep = [at for at, score in enumerate(scores) if math.isfinite(score)]
    return len(scores) - len(keep), keep


def _message(answer: dict[str, Any], summary: str) -> str | None:
    matched, scored = answer["matched"], answer["scored"]
    if matched == 0:
        return "No run matches this filter."
    if scored == 0:
        noun = "run matches" if matched == 1 else "runs match"
        return f"{matched:,} {noun}, but none has scores (no {summary}): nothing to plot."
    if not answer["varying"]:
        same = ", ".join(answer["constant"]) or "no exec args"
        if matched == 1:
            return f"Only one run matches ({same}): no arg can vary. Widen the filter."
        return (
            f"The {matched:,} matching runs have the same exec args ({same}): no arg varies, "
            "nothing to plot against. Widen the filter."
        )
    return None


def _notes(answer: dict[str, Any], summary: str, x: str | None) -> list[str]:
    notes = []
    if answer["message"] is None and answer["without_scores"]:
        count = answer["without_scores"]
        notes.append(f"{count:,} matching run{'s' if count != 1 else ''} without scores "
                     f"(no {summary}) left out.")
    if answer["sampled"]:
        notes.append(
            f"A sample is drawn: {answer['shown']:,} of the {answer['scored']:,} runs with a "
            f"{summary}, chosen at random (the same runs for the same filter); the args that "
            f"vary are found over all {answer['matched']:,} matching runs."
        )
    if answer["dropped_axes"]:
        notes.append(f"Only the first {MAX_AXES} of {len(answer['varying'])} varying args are drawn.")
    if x and answer["x"] is not None and x != answer["x"]:
        notes.append(f"{x} does not vary among these runs: the scatter shows {answer['x']}.")
    return notes
