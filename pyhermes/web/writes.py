"""What the curation writes of ``hermes serve --writable`` do: tag, untag, note and archive
runs named by identifier, through the library, and what the answers say.

Plain functions over the served :class:`~pyhermes.web.state.HermesApp` and parsed
arguments (:mod:`pyhermes.web.params`); they know nothing of requests or HTTP (the
checks of a write, read-only server, origin and token, are the views' own:
:mod:`pyhermes.web.views_curation`). Every answer is JSON data of the same shape:
``{"runs": [what was done, per run], "refused": [{"identifier", "reason", ...}]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes import present
from pyhermes.errors import RunFormatError

if TYPE_CHECKING:
    from pyhermes.storage import Experiment, ExperimentList
    from pyhermes.web.state import HermesApp

__all__ = ["named_runs", "change_tags", "add_notes", "archive"]


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base``, POSIX separators (``path`` itself when not below it)."""
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return str(path)


#: Identifiers looked up per query (a filter of many is a long chain of conditions in SQL).
LOOKUP_CHUNK = 200


def named_runs(
    state: HermesApp, identifiers: Sequence[str]
) -> tuple[ExperimentList[Experiment], list[dict[str, Any]]]:
    """Return the indexed runs named by ``identifiers`` and the names refused, with their reason.

    A name is refused when no run of the served catalogue has that identifier, or
    when more than one has (a copied run: a write naming it would be ambiguous). The
    runs are those of the served index, so that a write reaches that index too.

    Raises:
        QueryError: the index cannot answer.
    """
    from pyhermes.index.query.filters import run
    from pyhermes.storage import ExperimentList

    wanted = list(dict.fromkeys(identifiers))
    matches: dict[str, list[Experiment]] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start:start + LOOKUP_CHUNK]
        for experiment in state.catalog.find(run.identifier.isin(chunk)):
            matches.setdefault(experiment.identifier, []).append(experiment)
    refused: list[dict[str, Any]] = []
    good: list[Experiment] = []
    for identifier in wanted:
        runs = matches.get(identifier, [])
        if not runs:
            refused.append({"identifier": identifier, "reason": "no run has this identifier"})
        elif len(runs) > 1:
            paths = ", ".join(sorted(state.relative(experiment) for experiment in runs))
            refused.append({
                "identifier": identifier,
                "reason": f"{len(runs)} runs have this identifier ({paths}); "
                "curate them with hermes tag/note/archive by path",
            })
        else:
            good.append(runs[0])
    return ExperimentList(good), refused


def _tag_changes(
    runs: ExperimentList[Experiment], add: Sequence[str], remove: Sequence[str]
) -> tuple[list[tuple[Experiment, tuple[str, ...], tuple[str, ...]]], list[tuple[Experiment, str]]]:
    """Change the tags of ``runs`` (all at once; run by run if a run fails): return
    (run, before, after) of each run changed and (run, reason) of each that failed."""
    try:
        return _apply(runs, add, remove), []
    except (OSError, RunFormatError):
        pass  # some run vanished or is unreadable: the others are written; find which, run by run
    done, failed = [], []
    for experiment in runs:
        try:
            done.extend(_apply([experiment], add, remove))
        except (OSError, RunFormatError) as exc:
            failed.append((experiment, str(exc) or type(exc).__name__))
    return done, failed


def _apply(
    runs: Sequence[Experiment], add: Sequence[str], remove: Sequence[str]
) -> list[tuple[Experiment, tuple[str, ...], tuple[str, ...]]]:
    """Add, then remove tags with the library's list calls; (run, before, after) per run."""
    from pyhermes.storage import ExperimentList

    chosen = runs if isinstance(runs, ExperimentList) else ExperimentList(runs)
    first: dict[int, tuple[Experiment, tuple[str, ...], tuple[str, ...]]] = {}
    for changes in (chosen.add_tags(*add) if add else [], chosen.remove_tags(*remove) if remove else []):
        for change in changes:
            key = id(change.run)
            before = first[key][1] if key in first else tuple(change.before)
            first[key] = (change.run, before, tuple(change.after))
    return list(first.values())


def change_tags(
    state: HermesApp, identifiers: Sequence[str], add: Sequence[str], remove: Sequence[str]
) -> dict[str, Any]:
    """Add the tags ``add`` to the named runs and take ``remove`` away (checked tags, see
    :func:`pyhermes.web.params.body_tags`); return what changed.

    Returns:
        ``{"runs": [{"identifier", "path", "before", "after", "changed"}], "refused": [...]}``.

    Raises:
        InvalidTagError: a tag is not valid (nothing is written).
        OSError, RunFormatError: a run's tags could not be written (the library's error).
    """
    runs, refused = named_runs(state, identifiers)
    changes, failed = _tag_changes(runs, add, remove) if runs else ([], [])
    if changes:
        present.forget_counts()
    refused.extend(
        {"identifier": experiment.identifier, "path": state.relative(experiment), "reason": reason}
        for experiment, reason in failed
    )
    done = [
        {
            "identifier": experiment.identifier,
            "path": state.relative(experiment),
            "before": list(before),
            "after": list(after),
            "changed": before != after,
        }
        for experiment, before, after in changes
    ]
    return {"runs": done, "refused": refused}


def add_notes(state: HermesApp, identifiers: Sequence[str], text: str) -> dict[str, Any]:
    """Add the note ``text`` to each named run; return the notes written.

    A run whose note cannot be written (its folder gone or unreadable) is refused
    with the reason; the others get theirs.

    Returns:
        ``{"runs": [{"identifier", "path", "time", "text"}], "refused": [...]}``.

    Raises:
        ValueError: the library refuses the text (raised by the first run, before any write).
    """
    runs, refused = named_runs(state, identifiers)
    done = []
    for experiment in runs:
        try:
            note = experiment.add_note(text)
        except (OSError, RunFormatError) as exc:
            refused.append({
                "identifier": experiment.identifier,
                "path": state.relative(experiment),
                "reason": str(exc) or type(exc).__name__,
            })
            continue
        done.append({
            "identifier": experiment.identifier,
            "path": state.relative(experiment),
            "time": note.time,
            "text": note.text,
        })
    if done:
        present.forget_counts()
    return {"runs": done, "refused": refused}


def archive(state: HermesApp, identifiers: Sequence[str]) -> dict[str, Any]:
    """Move each named run to ``ROOT/.archive/`` (ROOT the served folder), as ``hermes archive``.

    A run still being written, or whose target exists, is refused with the reason
    (see :func:`pyhermes.curation.archive_runs`); the others move and leave the index.

    Returns:
        ``{"runs": [{"identifier", "path", "target"}], "refused": [...]}``: ``path``
        relative to the index root (as in ``/api/runs``), ``target`` to the served ROOT
        (``.archive/<path below ROOT>``).
    """
    from pyhermes.curation import archive_runs

    runs, refused = named_runs(state, identifiers)
    moved = archive_runs(state.root, runs, index=state.catalog) if runs else []
    done = []
    for item in moved:
        entry = {"identifier": item.run.identifier, "path": _relative(item.source, state.catalog.root)}
        if item.refused is not None:
            refused.append({**entry, "reason": item.refused})
        else:
            target = _relative(item.target, state.root) if item.target else None
            done.append({**entry, "target": target})
    if moved:
        present.forget_counts()
    return {"runs": done, "refused": refused}
