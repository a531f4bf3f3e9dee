"""What ``hermes-reindex --check`` finds: the runs on disk compared with the index.

Nothing here writes: the index is read by the caller, the disk is listed and,
for runs that changed (or all with ``reread``), read again. A run that cannot
be read at all is a *problem*; a run that was read with notes (odd bytes, lines
without ``:``; see :func:`pyhermes.rundir.decode_text`) is a run with
*warnings*: it is in the index and no failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyhermes import rundir
from pyhermes.errors import RunFormatError
from pyhermes.index.rules import disk_name, signature, stored_name
from pyhermes.index.sync.run_reading import read_run


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def compute_drift(
    index_root: Path,
    scope: str,
    stored: dict[str, tuple[Any, ...]],
    recorded: Sequence[tuple[str, str]],
    recorded_warnings: Sequence[tuple[str, list[str]]] = (),
    *,
    reread: bool = False,
) -> dict[str, Any]:
    """Compare the runs on disk below ``scope`` (relative to ``index_root``) with the index.

    ``stored`` maps indexed run paths to their signature values (those of
    :data:`~pyhermes.index.rules.SIGNATURE_COLUMNS`, or their first six), ``recorded``
    lists the (path, reason) problems of the index, ``recorded_warnings`` the
    (path, notes) of its runs read with warnings. Nothing is written.

    Returns a dict shaped like ``SyncReport.as_dict()`` (what a full sync would
    do: ``added``, ``updated``, ``removed``, ``unchanged``, ``problems``,
    ``problem_paths``, ``warnings``, ``warning_paths``: the runs that load with
    warnings, as read now or else as indexed) plus the lists ``not_indexed``,
    ``gone`` and ``changed`` (sorted run paths relative to the index root).
    """
    def in_scope(path: str) -> bool:
        return scope == "" or path.startswith(scope + "/")

    indexed = {path: sig for path, sig in stored.items() if in_scope(path)}
    problems = {path: reason for path, reason in recorded if in_scope(path)}
    on_disk = _runs_on_disk(index_root, scope, set(indexed) | set(problems))
    not_indexed: list[str] = []
    changed: list[str] = []
    unchanged = 0
    problem_paths: dict[str, str] = {}
    warning_paths = {path: notes for path, notes in recorded_warnings if in_scope(path)}
    for path in on_disk:
        run_dir = str(index_root / disk_name(path))
        known = indexed.get(path)
        differs = known is None or tuple(signature(run_dir)) != tuple(known)
        if not differs and not reread:
            unchanged += 1
            continue
        warning_paths.pop(path, None)
        try:
            notes = read_run(run_dir, path).row["warnings"]
        except (RunFormatError, OSError, ValueError) as exc:
            problem_paths[path] = _first_line(f"{type(exc).__name__}: {exc}")
            continue
        if notes is not None:
            warning_paths[path] = notes.split("\n")
        if known is None:
            not_indexed.append(path)
        elif differs:
            changed.append(path)
        else:
            unchanged += 1
    disk = set(on_disk)
    gone = sorted(
        {path for path in indexed if path not in disk} | {p for p in problems if p not in disk}
    )
    for path, reason in problems.items():
        if path in disk and path not in problem_paths and path not in not_indexed:
            problem_paths[path] = _first_line(reason)
    return {
        "added": len(not_indexed),
        "updated": len(changed),
        "removed": len([path for path in gone if path in indexed]),
        "unchanged": unchanged,
        "problems": len(problem_paths),
        "problem_paths": dict(sorted(problem_paths.items())),
        "warnings": len([path for path in warning_paths if path in disk]),
        "warning_paths": {path: warning_paths[path] for path in sorted(warning_paths) if path in disk},
        "not_indexed": sorted(not_indexed),
        "gone": gone,
        "changed": sorted(changed),
    }


def _runs_on_disk(index_root: Path, scope: str, known: set[str]) -> list[str]:
    """Return the run paths below ``scope`` as a sync lists them (symlinks not followed).

    A folder is a run when it holds ``hermes.info`` or is ``known`` (indexed, or a
    recorded problem, whose ``hermes.info`` may be what cannot be read); runs are not
    descended into; the folders of :data:`pyhermes.rundir.SKIPPED_FOLDERS` (``.hermes``,
    ``.git``, ``.archive``, ``.trash``) are skipped. Paths are in the
    index's form (:func:`pyhermes.index.rules.stored_name`).
    """
    runs: list[str] = []
    pending = [scope]
    while pending:
        current = pending.pop()
        folder = index_root / disk_name(current) if current else index_root

        def join(name: str, current: str = current) -> str:
            return f"{current}/{stored_name(name)}" if current else stored_name(name)

        names, others = rundir.list_folder(folder, lambda name: join(name) in known)
        runs.extend(join(name) for name in names)
        pending.extend(join(name) for name in reversed(others))
    return sorted(runs)
