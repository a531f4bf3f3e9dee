"""Finding run directories: detecting a run, listing folders and files, safe child paths.

Owns what makes a folder a run (an entry named ``hermes.info``), which folders
a scan skips, how a run's script and experiment names follow from its place in
the layout, and which names may stand for a file inside a run directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pyhermes.rundir._names import INFO_FILE, PathLike


def has_info_file(run_dir: PathLike) -> bool:
    """True when ``run_dir`` holds an entry named ``hermes.info``, of any kind; never raises.

    A ``hermes.info`` that is not a readable regular file (a FIFO, a symlink
    loop...) still marks a run: a broken one, reported when it is read.
    """
    try:
        return os.path.lexists(os.path.join(run_dir, INFO_FILE))
    except (OSError, ValueError):
        return False


def is_run_dir(path: PathLike) -> bool:
    """True when ``path`` is a real directory (not a symlink) holding a ``hermes.info`` file."""
    path = Path(path)
    try:
        return not path.is_symlink() and path.is_dir() and (path / INFO_FILE).is_file()
    except OSError:
        return False


#: Folders a scan never descends into: the index's own, git's, and the archived and
#: trashed runs (``hermes archive`` and ``hermes gc --yes`` move runs there).
SKIPPED_FOLDERS = frozenset({".hermes", ".git", ".archive", ".trash"})


def list_folder(
    folder: PathLike, is_run: Callable[[str], bool] | None = None
) -> tuple[list[str], list[str]]:
    """Return (run names, other subfolder names) of one folder, each sorted.

    A run is a real subdirectory (never a symlink) holding ``hermes.info`` (see
    :func:`has_info_file`);
    ``is_run(name)`` may vouch for a name without that check (a run the caller
    already knows). Other subfolders leave out :data:`SKIPPED_FOLDERS`. An
    unreadable folder lists as empty.
    """
    runs: list[str] = []
    others: list[str] = []
    prefix = os.path.join(folder, "")
    for name in list_subfolders(folder):
        if (is_run is not None and is_run(name)) or has_info_file(prefix + name):
            runs.append(name)
        elif name not in SKIPPED_FOLDERS:
            others.append(name)
    return runs, others


def list_subfolders(folder: PathLike) -> list[str]:
    """Return the names of the real subdirectories (never symlinks) of ``folder``, sorted.

    An unreadable folder lists as empty. Only the names are kept while listing: a
    folder of a million runs held as ``os.DirEntry`` objects (each with its full
    path) costs ~400 bytes a run, its names ~80.
    """
    names: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        names.append(entry.name)
                except OSError:
                    continue
    except OSError:
        return []
    names.sort()
    return names


def iter_run_dirs(root: PathLike, recursive: bool = False) -> Iterator[Path]:
    """Yield the run directories below ``root``, sorted by name within each folder.

    Without ``recursive`` only the direct subdirectories of ``root`` are looked at
    (the documented ``load_all``). With it, the whole tree is walked; a run's own
    subfolders are not searched. Directory symlinks are never followed, so a run is
    never listed twice and a link loop never hangs the scan. Unreadable folders are
    skipped.
    """
    pending = [Path(root)]
    while pending:
        folder = pending.pop()
        runs, others = list_folder(folder)
        yield from (folder / name for name in runs)
        if recursive:
            pending.extend(folder / name for name in reversed(others))


def layout_names(run_dir: PathLike) -> tuple[str | None, str | None]:
    """Return (script name, experiment name) of a run from its place in the layout.

    ``<...>/experiments/<script>/<experiment>/<identifier>``; ``None`` for a part
    the path does not have.
    """
    parts = os.path.normpath(os.path.abspath(run_dir)).split(os.sep)
    if len(parts) >= 4 and parts[-4] == "experiments":
        return parts[-3], parts[-2]
    return None, None


def safe_child(run_dir: PathLike, name: PathLike) -> Path:
    """Return ``run_dir/name`` for a plain file name.

    Raises:
        ValueError: ``name`` is empty, absolute, ``.``/``..`` or contains a path
            separator, so it would not name a file directly inside the run directory.
    """
    text = os.fspath(name)
    if (
        not text
        or text in {".", ".."}
        or "/" in text
        or (os.sep != "/" and os.sep in text)
        or (os.altsep is not None and os.altsep in text)
        or "\0" in text
        or os.path.isabs(text)
    ):
        raise ValueError(
            f"{text!r} is not a plain file name inside the run directory {run_dir} "
            "(no '..', absolute paths or separators)"
        )
    return Path(run_dir) / text


def list_files(run_dir: PathLike, suffix: str = "") -> list[str]:
    """Return the names of the regular files in ``run_dir`` ending with ``suffix``, sorted."""
    with os.scandir(run_dir) as entries:
        return sorted(
            entry.name
            for entry in entries
            if entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False)
        )
