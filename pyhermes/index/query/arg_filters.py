"""Filters on what a run was given: its exec args and its ``hermes.info`` values.

The filter objects of :mod:`pyhermes.index.query.filters` for the two key-value
tables of a run, with the functions that build them:

* exec args (``hermes_arg``): :func:`arg` (``arg("-lr") < 0.01``,
  ``arg("-env").isin([...])``, ``arg("-seed").exists()``), :func:`flag`
  (``flag("--doubledqn")``) and :func:`has_args` (whole argument lines);
* ``hermes.info`` values (``hermes_info``): :func:`info`
  (``info("comments").contains("sweep")``), compared as text.

Each renders one SQL condition on ``hermes_run`` (an ``EXISTS`` or ``IN`` over the
argument or info table) and evaluates in memory against a run's
:attr:`exec_arg_lines`, ``exec_args`` or ``info_dict``, with the same two-valued
logic as every filter.

An exec-arg filter the grammar built from text carries :attr:`ArgPresent.written`
(a :class:`Written`: the text and where the key stands in it, set by
:func:`written_in`), so that a key no run has can be reported against that text
(:mod:`pyhermes.index.query.known_keys`); filters built in Python carry ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

from pyhermes import rundir
from pyhermes.errors import QueryError
from pyhermes.index.query.filters import (
    ARG,
    COMPARISONS,
    INFO,
    SQL_OPS,
    Comparisons,
    Experiment,
    Filter,
    Node,
    Params,
    arg_col,
    info_col,
    run_col,
    text_condition,
    text_matches,
)

__all__ = ["arg", "flag", "info", "has_args", "Written", "written_in", "ArgPresent", "ArgCompare", "ArgIn"]


class Written(NamedTuple):
    """Where an exec-arg key was written: the whole filter ``text`` and the key's ``position``."""

    text: str
    position: int


# --------------------------------------------------------------------------- exec args


def _arg_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return " ".join(str(value).split())


def _arg_values(experiment: Experiment, key: str) -> list[tuple[str | None, float | None]]:
    """(text, number) of every occurrence of ``key`` among the run's arguments."""
    occurrences = []
    for line in experiment.exec_arg_lines:
        line_key, texts = rundir.split_arg(line)
        if line_key != key:
            continue
        text = " ".join(texts) if texts else None
        occurrences.append((text, rundir.numeric_value(texts)))
    return occurrences


def _arg_exists(condition: str, params: Params) -> str:
    """The runs having an argument that meets ``condition``.

    An uncorrelated IN lets the database use the (raw, run_id) / (key, num) indexes
    once, instead of probing the argument table for every run: the better plan for a
    whole answer. A query that wants the first few runs in index order
    (``hermes ls --limit``) probes instead (``params.correlated``): the walk stops
    after a few runs, where the IN would first collect every run having the
    argument (50,000 of 100,000 for a common flag).
    """
    if params.correlated:
        return (
            f"EXISTS (SELECT 1 FROM {ARG} WHERE {arg_col('run_id')} = {run_col('id')} "
            f"AND {condition})"
        )
    return f"{run_col('id')} IN (SELECT {arg_col('run_id')} FROM {ARG} WHERE {condition})"


class ArgPresent(Node):
    _fields = ('key',)
    key: str
    #: Where the grammar read the key (see :func:`written_in`); ``None`` for a filter built in Python.
    written: Written | None = None

    def sql(self, params: Params) -> str:
        return _arg_exists(f"{arg_col('key')} = {params.bind(self.key)}", params)

    def matches(self, experiment: Experiment) -> bool:
        return bool(_arg_values(experiment, self.key))

    def __repr__(self) -> str:
        return self.key


def _numeric_operand(value: Any) -> float | None:
    """A Python number compares numerically; strings (even ``"64"``) compare as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class ArgCompare(Node):
    """``key op value``: a Python number compares with the option's number, anything else
    (strings, lists for multi-value options) with its text."""

    _fields = ('key', 'op', 'value')
    key: str
    op: str
    value: Any
    written: Written | None = None  # as ArgPresent.written

    def sql(self, params: Params) -> str:
        key = f"{arg_col('key')} = {params.bind(self.key)}"
        number = _numeric_operand(self.value)
        if number is not None and not math.isnan(number):
            column, operand = arg_col("num"), number
        else:
            column, operand = arg_col("value"), _arg_text(self.value)
        condition = f"{column} IS NOT NULL AND {column} {SQL_OPS[self.op]} {params.bind(operand)}"
        return _arg_exists(f"{key} AND {condition}", params)

    def matches(self, experiment: Experiment) -> bool:
        compare = COMPARISONS[self.op]
        number = _numeric_operand(self.value)
        for text, num in _arg_values(experiment, self.key):
            if number is not None and not math.isnan(number):
                if num is not None and compare(num, number):
                    return True
            elif text is not None and compare(text, _arg_text(self.value)):
                return True
        return False

    def __repr__(self) -> str:
        return f"{self.key} {self.op} {self.value!r}"


class ArgIn(Node):
    _fields = ('key', 'values')
    key: str
    values: tuple[Any, ...]
    written: Written | None = None  # as ArgPresent.written

    def sql(self, params: Params) -> str:
        if not self.values:
            return "1 = 0"
        return "(" + " OR ".join(ArgCompare(self.key, "==", v).sql(params) for v in self.values) + ")"

    def matches(self, experiment: Experiment) -> bool:
        return any(ArgCompare(self.key, "==", value).matches(experiment) for value in self.values)

    def __repr__(self) -> str:
        return f"{self.key} in {self.values!r}"


class HasArgs(Node):
    """The run's exec-args set contains every one of ``raws`` (lines like ``-lr 0.001``)."""

    _fields = ('raws',)
    raws: frozenset[str]

    def sql(self, params: Params) -> str:
        if not self.raws:
            return "1 = 1"
        parts = (
            _arg_exists(f"{arg_col('raw')} = {params.bind(raw)}", params) for raw in sorted(self.raws)
        )
        return "(" + " AND ".join(parts) + ")"

    def matches(self, experiment: Experiment) -> bool:
        return self.raws <= experiment.exec_args


def has_args(*raws: str) -> Filter:
    """Runs whose exec-args set contains all of ``raws`` (e.g. ``"-lr 0.001"``, ``"--doubledqn"``)."""
    return HasArgs(frozenset(" ".join(raw.split()) for raw in raws))


class ArgRef(Comparisons):
    """An exec-arg key (``arg("-lr")``) to compare: ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, :meth:`isin`."""

    def __init__(self, key: str) -> None:
        if not key or len(key.split()) != 1:
            raise QueryError(f"an exec-arg key is one word like '-lr' or '--doubledqn', not {key!r}")
        self.key = key

    def _compare(self, op: str, value: Any) -> Filter:
        return ArgCompare(self.key, op, value)

    def isin(self, values: Iterable[Any]) -> Filter:
        """Runs whose value of this key equals one of ``values``."""
        return ArgIn(self.key, tuple(values))

    def exists(self) -> Filter:
        """Runs that have this key (flag, positional or option)."""
        return ArgPresent(self.key)


def arg(key: str) -> ArgRef:
    """Refer to the exec-arg ``key`` (e.g. ``"-lr"``) for comparisons."""
    return ArgRef(key)


def flag(key: str) -> Filter:
    """Runs that have the flag or positional ``key`` (or an option of that key); negate with ``~``."""
    return ArgPresent(ArgRef(key).key)


def written_in(condition: Filter, text: str, position: int) -> Filter:
    """Return ``condition``, an exec-arg filter just built, marked as read at ``position`` of ``text``.

    The grammar marks each exec-arg condition it builds; the mark is set once, right
    after the filter is made (filters are otherwise immutable), and is no part of the
    filter's SQL or repr.
    """
    if isinstance(condition, (ArgPresent, ArgCompare, ArgIn)):
        object.__setattr__(condition, "written", Written(text, position))
    return condition


# --------------------------------------------------------------------------- info


class InfoCompare(Node):
    """A ``hermes.info`` value: ``op`` is a comparison, ``startswith`` or ``contains`` (text)."""

    _fields = ('key', 'op', 'value')
    key: str
    op: str
    value: str

    def sql(self, params: Params) -> str:
        condition = text_condition(info_col("value"), self.op, self.value, params)
        return (
            f"EXISTS (SELECT 1 FROM {INFO} WHERE {info_col('run_id')} = {run_col('id')} "
            f"AND {info_col('key')} = {params.bind(self.key)} AND {condition})"
        )

    def matches(self, experiment: Experiment) -> bool:
        value = experiment.info_dict.get(self.key)
        return value is not None and text_matches(self.op, value, self.value)

    def __repr__(self) -> str:
        return f"info.{self.key} {self.op} {self.value!r}"


class InfoRef:
    """A ``hermes.info`` key (``info("comments")``) to compare as text."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __eq__(self, value: Any) -> Filter:  # type: ignore[override]
        return InfoCompare(self.key, "==", str(value))

    def __ne__(self, value: Any) -> Filter:  # type: ignore[override]
        return InfoCompare(self.key, "!=", str(value))

    __hash__ = None  # type: ignore[assignment]

    def startswith(self, prefix: str) -> Filter:
        """Runs whose value starts with ``prefix``."""
        return InfoCompare(self.key, "startswith", prefix)

    def contains(self, text: str) -> Filter:
        """Runs whose value contains ``text``."""
        return InfoCompare(self.key, "contains", text)


def info(key: str) -> InfoRef:
    """Refer to the ``hermes.info`` key ``key`` for text comparisons."""
    return InfoRef(key)
