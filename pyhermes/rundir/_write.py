"""Writing run directories: atomic writes, appended info lines, creating and finishing a run.

Owns writing so that each file is complete or absent, the legacy runner's
creation-time files (``hermes.info``, ``exec_arguments``, the re-execution
file, empty logs) and the lines it appended when a run finished.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pyhermes.rundir._listing import safe_child
from pyhermes.rundir._names import (
    COMMENTS_KEY,
    COMMIT_HASH_KEY,
    DEFAULT_COMMIT,
    END_TIME_KEY,
    EXEC_ARGS_FILE,
    EXECUTION_TIME_KEY,
    INFO_FILE,
    RE_EXECUTION_FILE,
    START_TIME_KEY,
    STDERR_FILE,
    STDOUT_FILE,
    PathLike,
    format_time,
    make_identifier,
)

#: This machine's name, in temporary file names (runs may be written from several hosts).
_HOST = re.sub(r"[^0-9A-Za-z_.-]", "_", os.uname().nodename if hasattr(os, "uname") else "host")[:64]


def atomic_write(path: PathLike, data: bytes | str, *, durable: bool = True) -> os.stat_result:
    """Write ``data`` to ``path`` so that the file is either complete or absent.

    The data goes to a temporary file in the same folder, named after ``path``, the
    host, the process and the thread (``.<name>.<host>-<pid>-<thread>.tmp``: no two
    live writers share it, so one found there was left by a crashed writer and is
    replaced; created exclusively all the same), is flushed to disk (unless
    ``durable`` is false: a caller writing many files flushes them all at once before
    it returns), and replaces ``path`` with :func:`os.replace`.

    Returns:
        The ``stat`` of the new file, taken once it was written and closed, just before
        the replace (its size and modification time are those of ``path`` after it).

    Raises:
        OSError: the temporary file cannot be created or written, or ``path`` replaced.
    """
    path = os.fspath(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    folder, name = os.path.split(path)
    writer = f"{_HOST}-{os.getpid()}-{threading.get_native_id()}"
    tmp_name = os.path.join(folder, f".{name}.{writer}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp_name, flags, 0o644)
    except FileExistsError:  # no live writer has this name: a crashed one left it
        os.unlink(tmp_name)
        fd = os.open(tmp_name, flags, 0o644)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        written = os.stat(tmp_name)  # after the close: a network filesystem sets the time then
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return written


def flush_to_disk(paths: Iterable[PathLike]) -> None:
    """Flush to disk everything written on the filesystems holding ``paths`` (files or folders
    that exist), each filesystem once: ``syncfs`` on Linux, :func:`os.sync` elsewhere.

    How a caller that wrote many files without ``fsync`` (see :func:`atomic_write`) makes them
    durable at once: far cheaper than an ``fsync`` of each file and its folder, and, unlike
    :func:`os.sync`, it does not wait on other filesystems (network mounts above all). A path
    that cannot be opened is skipped.

    Raises:
        OSError: a filesystem could not be flushed.
    """
    syncfs = _syncfs()
    if syncfs is None:
        os.sync()
        return
    import ctypes  # here: only callers that flush pay for it

    flushed: set[int] = set()
    for path in paths:
        try:
            device = os.stat(path).st_dev
            if device in flushed:
                continue
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            if syncfs(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"cannot flush the filesystem of {os.fspath(path)}: {os.strerror(code)}")
            flushed.add(device)
        finally:
            os.close(fd)


_SYNCFS: list[Any] = []


def _syncfs() -> Any:
    """libc's ``syncfs`` (Linux), or ``None``."""
    if not _SYNCFS:
        function = None
        if sys.platform.startswith("linux"):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                function = ctypes.CDLL(None, use_errno=True).syncfs
                function.argtypes = [ctypes.c_int]
                function.restype = ctypes.c_int
        _SYNCFS.append(function)
    return _SYNCFS[0]


def append_line(path: PathLike, line: str) -> None:
    """Append ``line`` plus a newline to ``path`` with one ``write`` call (O_APPEND)."""
    if "\n" in line or "\r" in line:
        raise ValueError(f"a line to append must not contain a line break: {line!r}")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def append_info(run_dir: PathLike, key: str, value: object) -> None:
    """Append ``key:value`` to the run's ``hermes.info``, as the legacy runner did."""
    if ":" in key:
        raise ValueError(f"an info key must not contain ':': {key!r}")
    append_line(Path(run_dir) / INFO_FILE, f"{key}:{value}")


def current_commit_hash(directory: PathLike | None = None) -> str:
    """Return ``git rev-parse HEAD`` of ``directory`` (default: the current one), else ``00000``."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_COMMIT
    commit = completed.stdout.strip()
    if completed.returncode != 0 or not re.fullmatch(r"[0-9a-f]{5,64}", commit):
        return DEFAULT_COMMIT
    return commit


def format_exec_args(exec_args: Iterable[str]) -> str:
    """Return the ``exec_arguments`` text of ``exec_args``: one argument per line."""
    lines = []
    for arg in exec_args:
        if "\n" in arg or "\r" in arg or not arg.strip():
            raise ValueError(f"an exec argument must be one non-blank line: {arg!r}")
        lines.append(arg.strip() + "\n")
    return "".join(lines)


def create_run_dir(
    experiments_dir: PathLike,
    script_name: str,
    experiment_name: str,
    exec_args: Iterable[str],
    job_idx: int,
    commit_hash: str,
    start: datetime,
) -> tuple[Path, str, datetime]:
    """Create a new run directory in the legacy layout and its creation-time files.

    ``experiments_dir`` is the ``<path_to_experiments>`` folder; the run goes to
    ``experiments/<script_name>/<experiment_name>/<identifier>``. Creation is
    exclusive: when the identifier is taken (two runs in the same microsecond), the
    start time moves on by a microsecond until a free name is found, so no
    directory is ever shared or overwritten.

    Returns:
        (run directory, identifier, the start time used in the identifier).

    Raises:
        ValueError: a name is empty or not a plain file name, or an argument is not one line.
    """
    if not re.fullmatch(r"[0-9A-Za-z]+", commit_hash):
        raise ValueError(f"a commit hash is letters and digits, not {commit_hash!r}")
    for label, name in (("script_name", script_name), ("experiment_name", experiment_name)):
        safe_child(experiments_dir, name)
        if not name.strip():
            raise ValueError(f"{label} must not be blank")
    script_name = script_name.strip()
    if script_name.endswith(".py"):
        script_name = script_name[:-3]
    args_text = format_exec_args(exec_args)
    parent = Path(experiments_dir) / "experiments" / script_name / experiment_name
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        identifier = make_identifier(start, job_idx, commit_hash)
        run_dir = parent / identifier
        try:
            run_dir.mkdir()
            break
        except FileExistsError:
            start = start + timedelta(microseconds=1)
    atomic_write(run_dir / INFO_FILE, f"{COMMIT_HASH_KEY}:{commit_hash}\n")
    atomic_write(run_dir / EXEC_ARGS_FILE, args_text)
    atomic_write(run_dir / RE_EXECUTION_FILE, _re_execution_text(script_name, args_text))
    for log_name in (STDOUT_FILE, STDERR_FILE):
        (run_dir / log_name).touch(exist_ok=False)
    return run_dir, identifier, start


def _re_execution_text(script_name: str, args_text: str) -> str:
    args = " ".join(line for line in args_text.splitlines())
    return f"# re-execution file written by pyhermes\n{script_name}.py {args}\n"


def write_finish(run_dir: PathLike, start: datetime, end: datetime, comments: str | None) -> None:
    """Append ``start_time``, ``end_time``, ``execution_time`` and ``comments`` as the runner did."""
    append_info(run_dir, START_TIME_KEY, format_time(start))
    append_info(run_dir, END_TIME_KEY, format_time(end))
    append_info(run_dir, EXECUTION_TIME_KEY, str((end - start).total_seconds()))
    if comments is not None:
        append_info(run_dir, COMMENTS_KEY, comments)


def rename_no_replace(source: str, target: str) -> None:
    """Rename ``source`` to ``target``, failing with FileExistsError when ``target`` exists.

    On Linux ``renameat2(RENAME_NOREPLACE)`` makes the check part of the rename; where it is
    missing (other systems, some filesystems) the target is checked just before a plain
    rename. Raises OSError as the rename does.
    """
    call = _renameat2()
    if call is not None:
        import ctypes  # here: a fresh process that never moves a run does not pay for it

        result = call(-100, os.fsencode(source), -100, os.fsencode(target), 1)  # AT_FDCWD, RENAME_NOREPLACE
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), source, None, target)
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    os.rename(source, target)


_RENAMEAT2: list[Any] = []


def _renameat2() -> Any:
    import ctypes

    if not _RENAMEAT2:
        function = None
        with contextlib.suppress(OSError, AttributeError):
            function = ctypes.CDLL(None, use_errno=True).renameat2
            function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            function.restype = ctypes.c_int
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]
