"""The views of one run: the Run page ``/run/<path>``, ``GET /api/run/<path>``, its ``.result``
series, its log files a window of lines at a time and its files as downloads.

``<path>`` is the run's folder relative to the catalogue root; a path that could
leave the root is refused (400) and a folder that is no indexed run is not found
(404), by :meth:`pyhermes.web.state.HermesApp.run`. A file is served only when it is
a regular file directly in the run's folder (:func:`pyhermes.rundir.open_run_file`).
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any
from urllib.parse import quote

from flask import Response, request
from werkzeug.wsgi import wrap_file

from pyhermes import present, rundir
from pyhermes.errors import QueryError, RunFormatError, UntrustedFileError
from pyhermes.present.details import human_size, run_downloads, run_health
from pyhermes.web import data, pages_run, params
from pyhermes.web.responses import csv_response, json_response
from pyhermes.web.state import HermesApp, NotFound, served

__all__ = ["run_page", "api_run", "api_result", "api_log", "api_file", "LOG_PAGE", "MAX_LOG_PAGE"]

#: Lines of a log shown at a time when the URL does not say.
LOG_PAGE = 200
#: The most lines of a log one request may ask for.
MAX_LOG_PAGE = 5000
#: The smoothing window of the Run page's learning curve when the URL does not say.
DEFAULT_WINDOW = 100


def _health(state: HermesApp, experiment: Any) -> dict[str, Any]:
    return run_health(experiment, getattr(state.catalog, "settle_seconds", None))


def run_page(path: str) -> str:
    """``GET /run/<path>``: return the Run page: a status badge, the end of ``stderr.log`` when
    the run crashed, what ``hermes show`` prints, tags and notes, the learning curve smoothed
    over ``window`` episodes (default 100), files as downloads and a paged viewer of the log
    ``log`` (default ``stderr.log`` for a crashed run, else ``stdout.log``).

    Raises:
        PathRefused: ``path`` could leave the catalogue root (a 400).
        NotFound: no indexed run there (a 404).
        QueryError: a ``window`` that is no whole number of at least 1 (a 400).
    """
    state = served()
    experiment = state.run(path)
    window = params.int_arg(request.args, "window", DEFAULT_WINDOW)
    tags, notes = data.run_curation(experiment)
    health = _health(state, experiment)
    logs = rundir.log_names(experiment.path_to_experiment)
    chosen = request.args.get("log", "")
    if chosen not in logs:
        preferred = rundir.STDERR_FILE if health["status"] == "crashed" else rundir.STDOUT_FILE
        chosen = preferred if preferred in logs else (logs[0] if logs else "")
    first_page = _log_window(experiment, chosen, None, LOG_PAGE) if chosen else None
    view = pages_run.RunView(
        window=window, health=health, files=run_downloads(experiment), logs=logs,
        log=chosen, log_window=first_page, log_page=LOG_PAGE,
    )
    return pages_run.run_page(state, path, present.run_details(experiment), tags, notes, view)


def api_run(path: str) -> Response:
    """``GET /api/run/<path>``: return the run as ``hermes show --format json``, or one of its tables.

    Without ``table`` the answer is every detail plus ``url_path``, ``status`` (finished,
    unfinished or crashed: the rule of ``hermes gc``) and ``status_reason``; with
    ``table=fields|info|args|scores|files`` it is that table as a list of records
    (JSON) or as ``<identifier>-<table>.csv`` (``format=csv``).

    Raises:
        PathRefused, NotFound: as :func:`run_page`.
        ValueError: an unknown ``table``, or a bad ``format`` (a 400).
    """
    state = served()
    experiment = state.run(path)
    details = present.run_details(experiment)
    details["url_path"] = path
    health = _health(state, experiment)
    details["status"], details["status_reason"] = health["status"], health["status_reason"]
    table = request.args.get("table")
    if table is None:
        return json_response(details)
    columns, rows = data.run_table(details, table)
    if params.wants_csv(request.args):
        return csv_response(columns, rows, f"{experiment.identifier}-{table}.csv")
    return json_response([dict(zip(columns, row, strict=True)) for row in rows])


def api_result(path: str, name: str) -> Response:
    """``GET /api/run/<path>/result/<name>``: return the scalar series of a ``.result`` file.

    The answer is ``{file, series: {key: {x, y}}, other_keys}``, each series
    downsampled to ``max_points``; a file that only a trusted load would read is a 400.

    Raises:
        PathRefused, NotFound: as :func:`run_page`; NotFound also for no such result file.
        QueryError: a bad ``max_points`` (a 400).
    """
    experiment = served().run(path)
    try:
        result = data.result_file(experiment, name)
    except UntrustedFileError as exc:
        return json_response({"error": str(exc)}, 400)
    max_points = params.int_arg(request.args, "max_points", present.MAX_POINTS)
    return json_response(data.result_series(result, max_points))


def _log_window(experiment: Any, name: str, start: int | None, count: int) -> dict[str, Any]:
    """The window of lines of the log ``name`` of ``experiment`` as the API answers it.

    Raises:
        NotFound: the run has no such log (a 404).
    """
    if name not in rundir.log_names(experiment.path_to_experiment):
        raise NotFound(f"run {experiment.identifier} has no log file {name!r}")
    try:
        window = rundir.read_log_window(experiment.path_to_experiment / name, start, count)
    except (OSError, RunFormatError):
        raise NotFound(f"run {experiment.identifier} has no readable log file {name!r}") from None
    return {
        "file": name,
        "start": window.start,
        "end": window.start + len(window.lines),
        "total": window.total,
        "size": window.size,
        "human_size": human_size(window.size),
        "lines": window.lines,
    }


def api_log(path: str, name: str) -> Response:
    """``GET /api/run/<path>/log/<name>``: return a window of lines of one log file of the run.

    ``start`` is the first line (0-based; absent, negative or past the end: the last page) and
    ``count`` the lines (default :data:`LOG_PAGE`, at most :data:`MAX_LOG_PAGE`). The answer is
    ``{file, start, end, total, size, human_size, lines}``; only the part of the file around
    the window is read.

    Raises:
        PathRefused, NotFound: as :func:`run_page`; NotFound also for no such log.
        QueryError: a ``start`` or ``count`` that is no whole number, or a ``count`` out of range (a 400).
    """
    experiment = served().run(path)
    count = params.int_arg(request.args, "count", LOG_PAGE)
    if count > MAX_LOG_PAGE:
        raise QueryError(f"count must be at most {MAX_LOG_PAGE}, got {count}")
    text = request.args.get("start", "").strip()
    start = None if not text else params.int_arg(request.args, "start", 0, minimum=-(2**62))
    if start is not None and start > 2**62:
        start = None
    return json_response(_log_window(experiment, name, start, count))


def _disposition(name: str) -> str:
    """``attachment`` with ``name``: an ASCII ``filename`` and, when that differs, the exact
    name as ``filename*`` (RFC 6266); quotes, backslashes and control characters never pass."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    plain = "".join(ch if ch.isprintable() and ch not in '"\\' else "_" for ch in plain) or "download"
    value = f'attachment; filename="{plain}"'
    if plain != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def api_file(path: str, name: str) -> Response:
    """``GET /api/run/<path>/file/<name>``: return one file of the run as a download.

    Only a regular file directly in the run's folder is served (a symbolic link only to
    one beside it), with its content type and ``Content-Disposition: attachment``.

    Raises:
        PathRefused, NotFound: as :func:`run_page`; NotFound (a 404) also for no such file.
        A name that is no plain file name, a folder, a special file or a link out of the run's
        folder is answered with a 403.
    """
    experiment = served().run(path)
    try:
        descriptor, status = rundir.open_run_file(experiment.path_to_experiment, name)
    except FileNotFoundError:
        raise NotFound(f"run {experiment.identifier} has no file {name!r}") from None
    except (ValueError, RunFormatError, OSError) as exc:
        reason = str(exc).replace(str(experiment.path_to_experiment), experiment.identifier)
        return json_response({"error": f"refused: {reason}"}, 403)
    handle = os.fdopen(descriptor, "rb")
    answer = Response(wrap_file(request.environ, handle), mimetype=None, direct_passthrough=True)
    answer.headers["Content-Type"] = rundir.content_type(name)
    answer.headers["Content-Disposition"] = _disposition(name)
    answer.headers["X-Content-Type-Options"] = "nosniff"
    answer.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    answer.headers["Cache-Control"] = "no-store"
    answer.content_length = status.st_size
    return answer
