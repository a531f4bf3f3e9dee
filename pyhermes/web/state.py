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
]

#: The most runs one compare view reads (the first ones in sort order).
MAX_COMPARE = 1000
#: The most rows of a query shown on the SQL page and in its JSON answer (CSV has them all).
SQL_MAX_ROWS = 10_000
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

    A sync runs in a background thread (at start and on :meth:`refresh`); pages keep
    answering from the index meanwhile, so none waits for it.
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
            self._thread = threading.Thread(
                target=self._sync, args=(mode,), name="hermes-sync", daemon=True
            )
            self._thread.start()
            return True

    def _sync(self, mode: str) -> None:
        try:
            report = self.catalog.sync(self.root, mode=mode, warn=False)
            self._report, self._error = report.as_dict(), None
        except Exception as exc:  # noqa: BLE001 - shown on the pages; the server keeps serving
            self._error = f"{type(exc).__name__}: {exc}"
        self._finished_at = time.time()

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the running sync, if any, is done."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def status(self) -> dict[str, Any]:
        """Return the state of the sync: ``running``, the last ``report``, ``error``, ``finished_at``."""
        thread = self._thread
        return {
            "running": bool(thread is not None and thread.is_alive()),
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
