"""Filters on how a run was curated: its tags (``hermes_tag``) and notes (``hermes_note``).

The filter objects of :mod:`pyhermes.index.query.filters` for the two curation
tables, with the references that build them:

* :data:`tag`: ``tag == "paper"`` (the run has the tag), ``tag != "paper"`` (it
  has not: ``~(tag == "paper")``), ``tag.isin(["a", "b"])`` (it has one of them).
  Tags compare exactly; a value that is not a valid tag
  (:func:`pyhermes.rundir.check_tag`) is a :class:`~pyhermes.errors.QueryError`.
* :data:`note`: ``note.contains("diverged")``: some note of the run contains the
  text, ignoring the case of the letters A to Z (SQLite's ``lower`` and ``LIKE``
  fold no other letter; on PostgreSQL ``lower`` folds every letter, so there a
  search also ignores the case of ``É``). An empty text matches the runs that
  have a note.

Each renders one SQL condition on ``hermes_run`` (an ``IN`` over the tag or note
table, a correlated ``EXISTS`` for queries that want the first few runs, see
:class:`~pyhermes.index.query.filters.Params`) and evaluates in memory against a
run's ``tags`` and ``notes``, with the same two-valued logic as every filter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyhermes import rundir
from pyhermes.errors import InvalidTagError, QueryError
from pyhermes.index.query.filters import Experiment, Filter, Node, Not, Params, run_col
from pyhermes.index.store import layout

__all__ = ["tag", "note", "check_tag_value", "fold_case"]

TAG = layout.TAG.name
NOTE = layout.NOTE.name
_TAG_COLUMNS = frozenset(layout.column_names(layout.TAG))
_NOTE_COLUMNS = frozenset(layout.column_names(layout.NOTE))
#: ``str.translate`` table folding A-Z to a-z and nothing else (what SQLite's ``lower`` does).
_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def tag_col(name: str) -> str:
    """The qualified SQL name of the ``hermes_tag`` column ``name``."""
    assert name in _TAG_COLUMNS, name
    return f"{TAG}.{name}"


def note_col(name: str) -> str:
    """The qualified SQL name of the ``hermes_note`` column ``name``."""
    assert name in _NOTE_COLUMNS, name
    return f"{NOTE}.{name}"


def fold_case(text: str) -> str:
    """Return ``text`` with the letters A to Z lowered, and nothing else changed."""
    return text.translate(_ASCII_LOWER)


def check_tag_value(value: Any) -> str:
    """Return ``value`` as the tag it names (stripped, see :func:`pyhermes.rundir.check_tag`).

    Raises:
        QueryError: it is not a valid tag; the message says why.
    """
    try:
        return rundir.check_tag(str(value))
    except InvalidTagError as exc:
        raise QueryError(str(exc)) from exc


def _child_exists(table: str, run_id: str, condition: str, params: Params) -> str:
    """The runs having a row of ``table`` (whose run column is ``run_id``) that meets
    ``condition``: an uncorrelated ``IN`` (the index on the condition's column is read
    once), or a correlated ``EXISTS`` when ``params.correlated`` (a query that stops
    after the first few runs probes each by its key instead)."""
    if params.correlated:
        return f"EXISTS (SELECT 1 FROM {table} WHERE {run_id} = {run_col('id')} AND {condition})"
    return f"{run_col('id')} IN (SELECT {run_id} FROM {table} WHERE {condition})"


def _like_escape(text: str) -> str:
    """``text`` with LIKE's wildcards escaped by ``/`` (matches ``ESCAPE '/'``)."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


class TagIn(Node):
    """The run has at least one of ``tags`` (one tag: ``tag == x``)."""

    _fields = ("tags",)
    tags: tuple[str, ...]

    def sql(self, params: Params) -> str:
        if not self.tags:
            return "1 = 0"
        if len(self.tags) == 1:
            condition = f"{tag_col('tag')} = {params.bind(self.tags[0])}"
        else:
            condition = f"{tag_col('tag')} IN ({', '.join(params.bind(t) for t in self.tags)})"
        return _child_exists(TAG, tag_col("run_id"), condition, params)

    def matches(self, experiment: Experiment) -> bool:
        return not set(self.tags).isdisjoint(experiment.tags)

    def __repr__(self) -> str:
        if len(self.tags) == 1:
            return f"tag == {self.tags[0]!r}"
        return f"tag in {self.tags!r}"


class NoteContains(Node):
    """Some note of the run contains ``text``, ignoring the case of A to Z."""

    _fields = ("text",)
    text: str

    def sql(self, params: Params) -> str:
        pattern = params.bind("%" + _like_escape(fold_case(self.text)) + "%")
        condition = f"lower({note_col('text')}) LIKE lower({pattern}) ESCAPE '/'"
        return _child_exists(NOTE, note_col("run_id"), condition, params)

    def matches(self, experiment: Experiment) -> bool:
        wanted = fold_case(self.text)
        return any(wanted in fold_case(entry.text) for entry in experiment.notes)

    def __repr__(self) -> str:
        return f"note ~ {self.text!r}"


class TagRef:
    """The tags of a run: ``tag == "paper"``, ``tag != "paper"``, ``tag.isin([...])``."""

    def __eq__(self, value: Any) -> Filter:  # type: ignore[override]
        return TagIn((check_tag_value(value),))

    def __ne__(self, value: Any) -> Filter:  # type: ignore[override]
        return Not(self == value)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Iterable[Any]) -> Filter:
        """Runs having at least one of the tags ``values`` (none for an empty list).

        Raises:
            QueryError: a value is not a valid tag.
        """
        return TagIn(tuple(dict.fromkeys(check_tag_value(value) for value in values)))

    def __repr__(self) -> str:
        return "tag"


class NoteRef:
    """The notes of a run: ``note.contains("diverged")``."""

    def contains(self, text: str) -> Filter:
        """Runs with a note containing ``text``, ignoring the case of the letters A to Z."""
        return NoteContains(str(text))

    def __repr__(self) -> str:
        return "note"


#: The tags of a run, to compare: ``tag == "paper"``, ``tag != "paper"``, ``tag.isin([...])``.
tag = TagRef()
#: The notes of a run, to search: ``note.contains("diverged")``.
note = NoteRef()
