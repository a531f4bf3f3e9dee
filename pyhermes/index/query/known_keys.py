"""Exec-arg keys that a filter text names and no run has: reported with the closest known keys.

A misspelt key (``--doubledqm`` for ``--doubledqn``, ``lr`` for ``-lr``) would
otherwise match no run, or every run under ``not``, without a word. The grammar
(:mod:`pyhermes.index.query.grammar`) marks each exec-arg condition it reads from
text with where the key stands in it (:class:`~pyhermes.index.query.arg_filters.Written`);
before runs are filtered, the keys so marked are compared with the keys the runs have:

* :func:`check_index_keys`: the exec-arg keys of the whole index
  (:func:`pyhermes.index.query.table.arg_keys`, one ``SELECT DISTINCT`` kept per
  change token), for any filter an index answers;
* :func:`check_list_keys`: the keys of the runs of a list built by hand.

A key that no run has raises :class:`~pyhermes.errors.UnknownKeyError`, whose
message names the closest known keys (:func:`close_keys`, by
:func:`difflib.get_close_matches`), or lists the keys there are, or says that
there are no runs. What is not checked, on purpose: filters built in Python
(``flag("--x")``: a program may ask for a key before any run has it), ``info.KEY``
(``hermes.info`` keys are free-form and differ from run to run), fields and
summaries (the grammar knows them), ``tag`` and ``note``.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable
from typing import Any, Protocol

from pyhermes import rundir
from pyhermes.errors import UnknownKeyError
from pyhermes.index.query.arg_filters import ArgCompare, ArgIn, ArgPresent, Written
from pyhermes.index.query.filters import RUN, RUN_FIELDS, And, Filter, Not, Or
from pyhermes.index.query.tokens import caret_lines
from pyhermes.index.store.layout import SUMMARY_COLUMNS

__all__ = ["written_keys", "close_keys", "check_keys", "check_index_keys", "check_list_keys"]

#: At most this many keys are suggested, and this many listed when none is close.
_SUGGESTED = 3
_LISTED = 12
#: Names a bare word may have meant besides exec-arg keys (``final_men`` -> ``final_mean``).
_OTHER_NAMES = (*SUMMARY_COLUMNS, *RUN_FIELDS, "tag", "note")

_ArgNode = ArgPresent | ArgCompare | ArgIn
#: The exec-arg conditions found in an index, by the index's URL: a filter asked again (a bound
#: list asks its scope at every step) is not checked again. A key leaves an index only with
#: the last run holding it; a filter checked before that then matches no run, as it says.
_CHECKED: weakref.WeakKeyDictionary[_ArgNode, str] = weakref.WeakKeyDictionary()


class KeySource(Protocol):
    """An open index whose exec-arg keys are read (:class:`pyhermes.index.query.runs.RunQueries`)."""

    @property
    def url(self) -> str: ...

    @property
    def reader(self) -> Any: ...

    def change_token(self) -> str | None: ...


def _written_nodes(condition: Filter) -> list[_ArgNode]:
    """The exec-arg conditions of ``condition`` read from text, in the order of the tree."""
    found: list[_ArgNode] = []
    pending: list[Filter] = [condition]
    while pending:
        node = pending.pop()
        if isinstance(node, (And, Or)):
            pending.extend(reversed(node.parts))
        elif isinstance(node, Not):
            pending.append(node.part)
        elif isinstance(node, (ArgPresent, ArgCompare, ArgIn)) and node.written is not None:
            found.append(node)
    return found


def written_keys(condition: Filter) -> list[tuple[str, Written]]:
    """Return ``(key, where written)`` of every exec-arg condition of ``condition`` read from text,
    in the order of the tree (the grammar's order); an empty list for filters built in Python."""
    return [(node.key, node.written) for node in _written_nodes(condition) if node.written is not None]


def close_keys(name: str, known: Iterable[str]) -> tuple[str, ...]:
    """Return up to three names ``name`` may have meant, the closest first.

    Candidates are the ``known`` exec-arg keys and, for a name without a leading
    ``-``, the score summaries, run fields, ``tag`` and ``note``. A key spelt the
    same but for its dashes or case (``lr`` -> ``-lr``) comes first.
    """
    import difflib  # only an error suggests keys

    keys = list(known)
    bare = name.lstrip("-").lower()
    same = [key for key in keys if key != name and key.lstrip("-").lower() == bare]
    candidates = keys if name.startswith("-") else [*keys, *_OTHER_NAMES]
    near = difflib.get_close_matches(name, candidates, n=_SUGGESTED, cutoff=0.6)
    return tuple(dict.fromkeys([*same, *near]))[:_SUGGESTED]


def _quoted(names: Iterable[str]) -> str:
    """``a``, ``a` or `b``, ``a`, `b` or `c``: names in backquotes joined for a sentence."""
    shown = [f"`{name}`" for name in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _unknown_key_error(
    unknown: list[tuple[str, Written]], known: Collection[str], nothing: str
) -> UnknownKeyError:
    """The error for the first of ``unknown`` (others named on a last line)."""
    key, written = unknown[0]
    suggestions = close_keys(key, known)
    head = f"no run has `{key}`"
    if not key.startswith("-"):
        head += f", and `{key}` is no run field or score summary"
    if suggestions:
        head += f"; did you mean {_quoted(suggestions)}?"
    elif known:
        ordered = sorted(known, key=lambda name: (not name.startswith("-"), name.lstrip("-"), name))
        more = len(ordered) - _LISTED
        listed = ", ".join(ordered[:_LISTED]) + (f" (and {more} more)" if more > 0 else "")
        head += f"; the exec-arg keys of the runs are {listed}"
    else:
        head += f": {nothing}"
    lines = [head, *caret_lines(written.text, written.position)]
    others = list(dict.fromkeys(other for other, _ in unknown[1:] if other != key))
    if others:
        lines.append(f"no run has {_quoted(others)} either")
    return UnknownKeyError("\n".join(lines), key, suggestions, written.position)


def check_keys(condition: Filter, known: Collection[str], nothing: str) -> None:
    """Check the exec-arg keys ``condition``'s text names against the ``known`` keys.

    ``nothing`` says why no key is known (e.g. ``"the index holds no runs yet"``),
    for when ``known`` is empty.

    Raises:
        UnknownKeyError: a key written in the text is not in ``known``; the message
            names the closest known keys and shows the text with a caret under the key.
    """
    unknown = [(key, written) for key, written in written_keys(condition) if key not in known]
    if unknown:
        unknown.sort(key=lambda item: item[1].position)
        raise _unknown_key_error(unknown, known, nothing)


def check_index_keys(condition: Filter, source: KeySource) -> None:
    """Check the exec-arg keys ``condition``'s text names against the keys of the index ``source``.

    Reads nothing when the filter names no key from text, or only keys found in this
    index before; else the index's keys, one query kept until the index changes.

    Raises:
        UnknownKeyError: no run of the index has a key written in the text.
    """
    nodes = [node for node in _written_nodes(condition) if _CHECKED.get(node) != source.url]
    if not nodes:
        return
    from pyhermes.index.query.table import arg_keys

    known = frozenset(arg_keys(source))  # type: ignore[arg-type]
    if all(node.key in known for node in nodes):
        for node in nodes:
            _CHECKED[node] = source.url
        return
    nothing = "no run has any exec arg"
    if not known and not source.reader.rows(f"SELECT 1 FROM {RUN} LIMIT 1"):
        nothing = "the index holds no runs yet"
    check_keys(condition, known, nothing)


def check_list_keys(condition: Filter, experiments: Iterable[Any]) -> None:
    """Check the exec-arg keys ``condition``'s text names against the keys of ``experiments``
    (the runs of a list built by hand: the union of their exec-arg keys).

    Raises:
        UnknownKeyError: none of the runs has a key written in the text.
    """
    if not written_keys(condition):
        return
    runs = list(experiments)
    known = {rundir.split_arg(line)[0] for run in runs for line in run.exec_arg_lines}
    check_keys(condition, known, "no run has any exec arg" if runs else "the list holds no runs")
