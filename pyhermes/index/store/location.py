"""Where the index lives: :func:`resolve_index` decides which database serves a folder of runs.

Nothing here opens a database (:mod:`pyhermes.index.store.engine` does) or imports
SQLAlchemy, except to parse a URL given as the index.

Where the index lives, in order:

1. the ``index`` argument: a value containing ``://`` is an SQLAlchemy URL,
   anything else the path of a SQLite file;
2. the environment variable ``HERMES_INDEX``, read the same way;
3. the nearest existing ``.hermes/index.sqlite`` in the folder or its ancestors;
4. a new ``<folder>/.hermes/index.sqlite``;
5. when that place cannot be written (read-only folder, or a read-only index
   found in step 3), a per-user cache file
   ``$XDG_CACHE_HOME/pyhermes/<key>.sqlite`` (default ``~/.cache/pyhermes``),
   keyed by the root folder, so that reading read-only data never fails for
   want of a writable index.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pyhermes.errors import CatalogError
from pyhermes.index.store import guard
from pyhermes.index.store.sqlitefile import on_network_filesystem
from pyhermes.rundir import INFO_FILE

__all__ = [
    "ENV_VAR",
    "INDEX_DIRNAME",
    "INDEX_FILENAME",
    "IndexLocation",
    "cache_dir",
    "find_index",
    "resolve_index",
    "sqlite_url",
]

#: Environment variable naming the index (a file path or an SQLAlchemy URL).
ENV_VAR = "HERMES_INDEX"
#: The folder, beside the runs, that holds the default index.
INDEX_DIRNAME = ".hermes"
#: The file name of the default index inside :data:`INDEX_DIRNAME`.
INDEX_FILENAME = "index.sqlite"


@dataclass(frozen=True)
class IndexLocation:
    """Where an index lives.

    ``url`` is the SQLAlchemy URL; ``file`` the SQLite file (``None`` for other
    databases and in-memory SQLite); ``root`` the folder that stored run paths
    are relative to, or ``None`` when the caller decides (an explicit file or
    URL; :func:`index_root` then keeps it in ``hermes_meta``).
    """

    url: str
    file: Path | None
    root: Path | None

    @property
    def lock_path(self) -> Path | None:
        """Return the lock file beside the SQLite file (``<file>.lock``), or ``None``."""
        return None if self.file is None else self.file.with_name(self.file.name + ".lock")


# --------------------------------------------------------------------------- resolving


def sqlite_url(file: Path) -> str:
    """Return the SQLAlchemy URL of the SQLite file ``file``.

    The same text as ``URL.create("sqlite", database=...).render_as_string()``,
    without importing SQLAlchemy.
    """
    return "sqlite:///" + quote(str(file), safe=" +/")


def _normalize_url(url: str) -> str:
    """Return ``url`` with ``postgresql://`` (or ``postgres://``) using the psycopg 3 driver.

    Raises :class:`CatalogError` when ``url`` is not an SQLAlchemy URL.
    """
    from sqlalchemy.engine import make_url

    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
        raise CatalogError(f"{url!r} is not a valid SQLAlchemy database URL: {exc}") from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _root_of(file: Path) -> Path | None:
    """Return ``<X>`` for a file ``<X>/.hermes/index.sqlite``, else ``None``."""
    if file.name == INDEX_FILENAME and file.parent.name == INDEX_DIRNAME:
        return file.parent.parent
    return None


def _explicit(index: str | os.PathLike[str]) -> IndexLocation:
    """Return the location named by an ``index`` argument or ``HERMES_INDEX`` value."""
    value = os.fspath(index)
    if "://" in value:
        from sqlalchemy.engine import make_url

        url = _normalize_url(value)
        parsed = make_url(url)
        file: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            if not parsed.database.startswith("file:"):
                file = Path(parsed.database).expanduser().absolute()
        return IndexLocation(url=url, file=file, root=None if file is None else _root_of(file))
    file = Path(value).expanduser().absolute()
    return IndexLocation(url=sqlite_url(file), file=file, root=_root_of(file))


def _is_writable(folder: Path) -> bool:
    """Return True when a file can be created in ``folder``.

    Checks ``os.access`` and then really creates (and removes) a file, since
    ``os.access`` says yes to root on a read-only folder that is, e.g., on a
    read-only mount.
    """
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".hermes-write-test-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return True


def _file_is_writable(file: Path) -> bool:
    """Return True when the existing SQLite ``file`` and its folder can be written.

    Never opens the file itself (closing a descriptor of it would drop this
    process's SQLite locks on it): ``os.access`` answers on a local filesystem,
    where it is exact; on a network filesystem, where the server may refuse what
    ``access`` allows (root squashed), SQLite itself is asked (see :func:`_sqlite_refuses_writes`).
    """
    if not os.access(file, os.R_OK | os.W_OK):
        return False
    # WAL mode creates -wal and -shm files, and the lock file lives there too.
    if not _is_writable(file.parent):
        return False
    return not (on_network_filesystem(file.parent) and _sqlite_refuses_writes(file))


def _sqlite_refuses_writes(file: Path) -> bool:
    """True when SQLite answers ``SQLITE_READONLY`` to a write transaction on ``file``.

    Only asked on a network filesystem, where pyhermes runs SQLite without WAL:
    closing this connection then checkpoints and deletes nothing. A busy file is
    a writable one.
    """
    guard.note_connection()
    try:
        connection = sqlite3.connect(os.fspath(file), timeout=0, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY") or "readonly" in str(exc)
    finally:
        connection.close()
    return False


def cache_dir() -> Path:
    """Return the per-user cache folder of indexes: ``$XDG_CACHE_HOME/pyhermes``.

    ``XDG_CACHE_HOME`` defaults to ``~/.cache`` (and is ignored unless absolute,
    as the XDG specification says). The folder is not created here.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    base_path = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return base_path / "pyhermes"


def _cache_location(root: Path) -> IndexLocation:
    """Return the per-user cache index keyed by ``root``, creating the cache folder.

    Raises :class:`CatalogError` when the cache folder cannot be written either.
    """
    root = root.absolute()
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(
            f"No writable place for the index of {root}: the folder is read-only and the "
            f"per-user cache {folder} cannot be created ({exc}). Pass index=... or set "
            f"{ENV_VAR} to a writable file or a database URL."
        ) from exc
    if not _is_writable(folder):
        raise CatalogError(
            f"No writable place for the index of {root}: the folder is read-only and so is "
            f"the per-user cache {folder}. Pass index=... or set {ENV_VAR} to a writable "
            "file or a database URL."
        )
    return _cache_file(root)


def _cache_file(root: Path) -> IndexLocation:
    """The per-user cache index keyed by ``root`` (nothing is created)."""
    root = root.absolute()
    key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    file = cache_dir() / f"{key}.sqlite"
    return IndexLocation(url=sqlite_url(file), file=file, root=root)


def find_index(path: Path, index: str | os.PathLike[str] | None = None) -> IndexLocation | None:
    """Return the existing index serving ``path`` by the rule of :func:`resolve_index`, else None.

    Creates nothing and writes no probe file (for read-only tools such as
    ``hermes-reindex --check``). A database URL is returned as it is.

    Raises:
        CatalogError: the URL is not valid.
    """
    explicit = index if index is not None and os.fspath(index) != "" else os.environ.get(ENV_VAR, "")
    if explicit:
        location = _explicit(explicit)
        return location if location.file is None or location.file.is_file() else None
    path = Path(path).expanduser().absolute()
    for folder in (path, *path.parents):
        candidate = folder / INDEX_DIRNAME / INDEX_FILENAME
        if candidate.is_file():
            if os.access(candidate, os.R_OK | os.W_OK) and os.access(folder / INDEX_DIRNAME, os.W_OK):
                return IndexLocation(url=sqlite_url(candidate), file=candidate, root=folder)
            path = folder
            break
    cached = _cache_file(path)
    return cached if cached.file is not None and cached.file.is_file() else None


def resolve_index(path: Path, index: str | os.PathLike[str] | None = None) -> IndexLocation:
    """Return where the index serving the runs under ``path`` lives.

    The rule, first match wins: the ``index`` argument; ``$HERMES_INDEX``; the
    nearest existing ``.hermes/index.sqlite`` in ``path`` or its ancestors; a
    new ``path/.hermes/index.sqlite`` (the ``.hermes`` folder is created here,
    the file by :func:`open_engine`); the per-user cache (see :func:`cache_dir`)
    when that place is not writable. A value containing ``://`` is an
    SQLAlchemy URL (``postgresql://`` is given the psycopg 3 driver), anything
    else a SQLite file path.

    Raises :class:`CatalogError` for an invalid URL, or when neither the folder
    nor the per-user cache can be written.
    """
    if index is not None and os.fspath(index) != "":
        return _explicit(index)
    env = os.environ.get(ENV_VAR, "")
    if env:
        return _explicit(env)

    path = Path(path).expanduser().absolute()
    for folder in (path, *path.parents):
        candidate = folder / INDEX_DIRNAME / INDEX_FILENAME
        if candidate.is_file():
            if _file_is_writable(candidate):
                return IndexLocation(url=sqlite_url(candidate), file=candidate, root=folder)
            # A read-only shared index: this user keeps a cache of the same tree.
            return _cache_location(folder)

    if (path / INFO_FILE).is_file():
        # A run directory is never written into by an index: this one lives in the cache.
        return _cache_location(path)
    hermes_dir = path / INDEX_DIRNAME
    target = hermes_dir if hermes_dir.is_dir() else path
    if _is_writable(target):
        try:
            hermes_dir.mkdir(exist_ok=True)
        except OSError:
            return _cache_location(path)
        file = hermes_dir / INDEX_FILENAME
        return IndexLocation(url=sqlite_url(file), file=file, root=path)
    return _cache_location(path)
