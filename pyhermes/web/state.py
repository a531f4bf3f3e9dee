"""What one served catalogue is: the catalog of ROOT, its background sync, and the limits of
its pages (the state the views of :mod:`pyhermes.web.app`'s route table and the pages of
:mod:`pyhermes.web.pages` share).

:func:`pyhermes.web.create_app` keeps the :class:`HermesApp` in the Flask app's
``extensions[EXTENSION]``; a view reaches it with :func:`served`.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes.errors import QueryError
from pyhermes.index.sync.progress import LISTING, SLICE_RUNS, SyncProgress

if TYPE_CHECKING:
    from pyhermes.storage import Catalog, Experiment

__all__ = [
    "HermesApp",
    "PathRefused",
    "NotFound",
    "served",
    "EXTENSION",
    "MAX_COMPARE",
    "SQL_MAX_ROWS",
    "DEFAULT_PER_PAGE",
    "LOOPBACK",
    "WriteRefused",
    "TOKEN_HEADER",
    "TOKEN_META",
    "MAX_WRITE_RUNS",
    "HOLD_FROM",
]

#: The most lines of one run each that a compare draws: when more runs match, a random sample
#: of them, seeded by the query (grouped compares read every matching run).
MAX_COMPARE = 100
#: The most rows of a query shown on the SQL page and in its JSON answer (CSV has them all).
SQL_MAX_ROWS = 10_000
#: The time limit of a statement of the SQL page and ``/api/sql``, in seconds, unless the app's
#: config (key :data:`SQL_TIMEOUT_CONFIG`, ``hermes serve --sql-timeout``) says otherwise.
DEFAULT_SQL_TIMEOUT = 10.0
SQL_TIMEOUT_CONFIG = "HERMES_SQL_TIMEOUT"
#: Runs per page when the URL does not say.
DEFAULT_PER_PAGE = 50
#: Loopback addresses: serving on them exposes nothing to the network.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: The request header carrying the per-server token of a write (``POST /api/runs/...``).
TOKEN_HEADER = "X-Hermes-Token"
#: The ``name`` of the ``<meta>`` element holding that token in every page of a writable server.
TOKEN_META = "hermes-token"
#: The most runs one write request may name.
MAX_WRITE_RUNS = 10_000
#: Pages wait for a sync of a ready index that reads more runs than this, as for a first
#: build; ``None``: :data:`pyhermes.index.sync.progress.SLICE_RUNS`, from which a sync writes
#: slice by slice (so that counts between its slices would be partial).
HOLD_FROM: int | None = None
#: The key of the served :class:`HermesApp` in ``flask.Flask.extensions``.
EXTENSION = "hermes"


class PathRefused(Exception):
    """A run path in a URL could leave the catalogue root (``..``, absolute, backslash): a 400."""


class NotFound(Exception):
    """No run, file or page there: a 404."""


class WriteRefused(Exception):
    """A write refused before anything is done: the server is read-only, the request comes
    from another origin, or its token is missing or wrong. A 403."""


class HermesApp:
    """What one served catalogue needs: the catalog of ROOT and its background sync.

    A sync runs in a background thread (at start and on :meth:`refresh`) and reports how
    far it has got (:attr:`progress`). A sync of an index that holds the served tree
    already (a refresh) holds nothing back: pages answer from the index as it was.
    Pages are :attr:`held` (they say "indexing" instead of counting runs, see
    :mod:`pyhermes.web.startup`) until the served tree has been synced once completely
    (:attr:`ready`), and while a sync reads more than :data:`HOLD_FROM` runs (it writes
    them slice by slice, so counts between slices would be partial).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = ".",
        index: str | None = None,
        sync: str = "quick",
        *,
        writable: bool = False,
    ) -> None:
        """Open the index of ``root`` (creating it unless ``sync="none"``).

        With ``writable`` the server accepts the curation writes (tags, notes, archive)
        that carry :attr:`token`, a random secret made now (``None`` when read-only).

        Raises:
            FileNotFoundError: ``root`` is not a directory.
            CatalogError: ``sync="none"`` and no index serves ``root`` yet.
        """
        from pyhermes.storage import Catalog

        self.root = Path(root)
        # Opened as its sync needs (see RunIndex.open_and_sync); that sync runs in the background.
        self.catalog: Catalog = Catalog.open_and_sync(self.root, index, sync=sync, defer=True)
        # Not ready: no sync of the tree ever completed (a first build; a build killed midway; an
        # index rebuilt for a new schema). Set once, then only the sync thread sets it.
        self._ready = sync == "none" or self.catalog.has_synced(self.root)
        self.progress = SyncProgress()
        self.sync_mode = sync
        self.writable = writable
        self.token: str | None = secrets.token_urlsafe(32) if writable else None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._report: dict[str, Any] | None = None
        self._error: str | None = None
        self._finished_at: float | None = None

    def token_matches(self, given: str | None) -> bool:
        """Return whether ``given`` is this server's token (compared in constant time).

        Always ``False`` on a read-only server or without a token.
        """
        if self.token is None or not given:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("ascii"))

    def refresh(self, mode: str | None = None) -> bool:
        """Start a sync of ROOT in the background unless one is running; return whether it started."""
        mode = mode or ("quick" if self.sync_mode == "none" else self.sync_mode)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self.progress = SyncProgress()
            self.progress.begin(LISTING)
            self._thread = threading.Thread(
                target=self._sync, args=(mode,), name="hermes-sync", daemon=True
            )
            self._thread.start()
            return True

    def _sync(self, mode: str) -> None:
        try:
            report = self.catalog.sync(self.root, mode=mode, warn=False, progress=self.progress)
            self._report, self._error = report.as_dict(), None
            self._ready = True
        except Exception as exc:  # noqa: BLE001 - shown on the pages; the server keeps serving
            self._error = f"{type(exc).__name__}: {exc}"
        self._finished_at = time.time()

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the running sync, if any, is done."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    @property
    def ready(self) -> bool:
        """Whether the index holds a complete sync of the served tree: until then (a first
        build running, or failed) no page may count runs from it."""
        return self._ready

    @property
    def held(self) -> bool:
        """Whether pages must wait instead of counting runs: the index is not :attr:`ready`, or
        a running sync reads more than :data:`HOLD_FROM` runs (thousands appeared at once)."""
        if not self._ready:
            return True
        thread = self._thread
        if thread is None or not thread.is_alive():
            return False
        total = self.progress.snapshot()["total"]
        if HOLD_FROM is None:
            return total is not None and total > SLICE_RUNS
        return total is not None and total > HOLD_FROM

    def status(self) -> dict[str, Any]:
        """Return the state of the sync: ``running``, the last ``report``, ``error``,
        ``finished_at``, ``root``; ``ready`` (see :attr:`ready`); ``indexing`` (a sync runs
        that pages wait for, see :attr:`held`); and the progress of the running sync,
        ``phase`` (``listing``, ``reading``, ``writing``; ``None`` when none runs), ``done``
        and ``total`` (runs read and to read; ``total`` is ``None`` while unknown)."""
        thread = self._thread
        running = bool(thread is not None and thread.is_alive())
        ready = self._ready
        step = self.progress.snapshot() if running else {"phase": None, "done": 0, "total": None}
        return {
            "running": running,
            "ready": ready,
            "indexing": running and self.held,
            "phase": step["phase"],
            "done": step["done"],
            "total": step["total"],
            "report": self._report,
            "error": self._error,
            "finished_at": self._finished_at,
            "root": str(self.root.resolve()),
        }

    def run(self, path: str) -> Experiment:
        """Return the indexed run at ``path`` (relative to the index root, POSIX separators).

        Raises:
            PathRefused: the path could leave the root (``..``, absolute, backslash).
            NotFound: no indexed run lives there.
        """
        parts = path.split("/")
        if (
            not path
            or path.startswith("/")
            or "\\" in path
            or "\x00" in path
            or ":" in parts[0]
            or any(part in ("", ".", "..") for part in parts)
        ):
            raise PathRefused(f"refused: {path!r} is not a run path below the catalogue root")
        folder = Path(self.catalog.root, *parts)
        if not folder.is_dir():
            raise NotFound(f"no run at {path}")
        try:
            return self.catalog.get(str(folder))
        except (QueryError, ValueError):
            raise NotFound(f"no run at {path}") from None

    def relative(self, experiment: Experiment) -> str:
        """Return the path of a run relative to the index root, POSIX separators (its URL part)."""
        return Path(experiment.path_to_experiment).relative_to(self.catalog.root).as_posix()


def served() -> HermesApp:
    """Return the :class:`HermesApp` of the Flask app handling the current request.

    Raises:
        RuntimeError: called outside a request (or app context) of an app of
            :func:`pyhermes.web.create_app`.
    """
    from flask import current_app

    state: HermesApp = current_app.extensions[EXTENSION]
    return state
