"""The Flask application of ``hermes serve``: routes of the pages and of the JSON API.

Pages: ``/runs``, ``/run/<path>``, ``/compare``, ``/sql``. API (JSON unless
``format=csv``): ``/api/runs``, ``/api/run/<path>``, ``/api/run/<path>/result/<name>``,
``/api/curves``, ``/api/sql``, ``/api/status``, ``POST /api/refresh``. The README's
"hermes serve" section documents the parameters. The state of a view lives in its
URL's query string, so every view can be bookmarked.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyhermes import present
from pyhermes._optional import require
from pyhermes.errors import CatalogError, HermesError, QueryError, UntrustedFileError
from pyhermes.web.state import (
    DEFAULT_PER_PAGE,
    LOOPBACK,
    MAX_COMPARE,
    SQL_MAX_ROWS,
    HermesApp,
    NotFound,
    PathRefused,
)

if TYPE_CHECKING:
    from flask import Flask, Response

    from pyhermes.storage import Experiment


_STATIC = Path(__file__).resolve().parent / "static"

__all__ = ["HermesApp", "create_app", "serve", "PathRefused", "NotFound", "MAX_COMPARE", "SQL_MAX_ROWS"]

def create_app(
    root: str | os.PathLike[str] = ".",
    index: str | None = None,
    sync: str = "quick",
    *,
    host: str = "127.0.0.1",
) -> Flask:
    """Return the Flask app serving the runs below ``root``; a first sync starts in the background.

    ``host`` is the address the app is served on: on a loopback address, requests
    naming another host (``Host:`` header) are refused, so that a web page elsewhere
    cannot reach the app by DNS rebinding.

    Raises:
        MissingDependencyError: Flask is not installed (``pip install "pyhermes[web]"``).
        FileNotFoundError, CatalogError: see :class:`HermesApp`.
    """
    flask = require("flask")
    from pyhermes.web import pages

    state = HermesApp(root, index=index, sync=sync)
    app = flask.Flask("pyhermes.web", static_folder=None)
    app.extensions["hermes"] = state
    request = flask.request

    # ------------------------------------------------------------------ helpers

    def args_list(name: str, single: str) -> list[str] | None:
        """Values given as ``single=a,b`` or as repeated ``name=a&name=b``; ``None`` if neither."""
        repeated = request.args.getlist(name)
        if repeated:
            return [value for value in repeated if value]
        if single in request.args:
            return present.split_list(request.args.get(single))
        return None

    def int_arg(name: str, default: int, minimum: int = 1) -> int:
        text = request.args.get(name, "").strip()
        if not text:
            return default
        try:
            value = int(text)
        except ValueError:
            raise QueryError(f"{name} must be a whole number, not {text!r}") from None
        if value < minimum:
            raise QueryError(f"{name} must be at least {minimum}, got {value}")
        return value

    def runs_state() -> dict[str, Any]:
        return {
            "where": request.args.get("where", ""),
            "sort": request.args.get("sort", ""),
            "columns": args_list("column", "columns"),
            "page": int_arg("page", 1),
            "per_page": int_arg("per_page", DEFAULT_PER_PAGE),
        }

    def page_of_runs(view: dict[str, Any], identifiers: Sequence[str] | None = None) -> Any:
        return present.runs_page(
            state.catalog,
            where=view["where"],
            sort=view["sort"] or None,
            columns=view["columns"],
            page=view["page"],
            per_page=view["per_page"],
            identifiers=identifiers,
        )

    def wants_csv() -> bool:
        fmt = request.args.get("format", "json")
        if fmt not in ("json", "csv"):
            raise QueryError(f"format must be json or csv, not {fmt!r}")
        return fmt == "csv"

    def json_response(data: Any, status: int = 200) -> Response:
        try:  # fast path: only times, numpy values and the like need converting
            body = json.dumps(data, ensure_ascii=False, allow_nan=False, default=_json_default)
        except ValueError:  # a NaN or infinity somewhere: convert everything
            body = json.dumps(present.json_value(data), ensure_ascii=False, allow_nan=False)
        return flask.Response(body, status=status, mimetype="application/json")

    def csv_response(columns: Sequence[str], rows: Any, filename: str) -> Response:
        def generate() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([present.text_value(value, compact=False) for value in row])
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        return flask.Response(
            flask.stream_with_context(generate()),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    def selected_runs() -> tuple[list[Experiment], int]:
        """The runs of a compare view: ``runs=ID,...`` (identifiers) or ``where``; and the match count."""
        from pyhermes.index.grammar import as_filter
        from pyhermes.index.query import run

        identifiers = args_list("run", "runs")
        if identifiers:
            condition = run.identifier.isin(identifiers)
        else:
            condition = as_filter(request.args.get("where") or None)
        sort = request.args.get("sort") or "start_time"
        total = state.catalog.count(condition)
        found = state.catalog.find(condition, order_by=sort, limit=MAX_COMPARE)
        return list(found), total

    def curves_options() -> dict[str, Any]:
        band = request.args.get("band", "std")
        if band not in ("std", "ci95", "none"):
            raise QueryError(f"band must be std, ci95 or none, not {band!r}")
        return {
            "group_by": request.args.get("group_by", ""),
            "window": int_arg("window", 100),
            "band": None if band == "none" else band,
            "min_runs": int_arg("min_runs", 0, minimum=0) or None,
            "max_points": min(int_arg("max_points", present.MAX_POINTS), present.MAX_POINTS),
            "raw": request.args.get("raw", "") in ("1", "true", "yes"),
        }

    def sql_answer(query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = state.catalog.sql(query)
        return result.columns, result.rows

    def is_api() -> bool:
        return request.path.startswith("/api/")

    loopback_only = host in LOOPBACK

    @app.before_request
    def local_hosts_only() -> Any:
        if loopback_only and _host_name(request.host) not in LOOPBACK:
            return json_response({"error": f"refused: unknown host {request.host!r}"}, 400)
        return None

    # ------------------------------------------------------------------ errors

    @app.errorhandler(HermesError)
    @app.errorhandler(ValueError)
    def bad_input(exc: Exception) -> Any:
        status = 503 if isinstance(exc, CatalogError) and not isinstance(exc, ValueError) else 400
        message = str(exc) or type(exc).__name__
        if is_api():
            return json_response(
                {"error": message, "position": getattr(exc, "position", None)}, status
            )
        return pages.error_page(state, message, status), status

    @app.errorhandler(PathRefused)
    def refused(exc: Exception) -> Any:
        if is_api():
            return json_response({"error": str(exc)}, 400)
        return pages.error_page(state, str(exc), 400), 400

    @app.errorhandler(NotFound)
    def not_found(exc: Exception) -> Any:
        if is_api():
            return json_response({"error": str(exc)}, 404)
        return pages.error_page(state, str(exc), 404), 404

    @app.errorhandler(404)
    def no_route(exc: Exception) -> Any:
        if is_api():
            return json_response({"error": f"no such page: {request.path}"}, 404)
        return pages.error_page(state, f"no such page: {request.path}", 404), 404

    # ------------------------------------------------------------------ pages

    @app.get("/")
    def home() -> Any:
        return flask.redirect("/runs")

    @app.get("/runs")
    def runs_view() -> Any:
        view = runs_state()
        try:
            page = page_of_runs(view)
        except QueryError as exc:
            return pages.runs_page(state, view, None, str(exc)), 400
        return pages.runs_page(state, view, page, None)

    @app.get("/run/<path:path>")
    def run_view(path: str) -> Any:
        experiment = state.run(path)
        return pages.run_page(state, path, present.run_details(experiment))

    @app.get("/compare")
    def compare_view() -> Any:
        options = curves_options()
        identifiers = args_list("run", "runs")
        view = {
            "where": request.args.get("where", ""),
            "sort": request.args.get("sort", ""),
            "columns": args_list("column", "columns"),
            "page": 1,
            "per_page": present.MAX_PER_PAGE,
        }
        if not identifiers and "where" not in request.args:  # nothing chosen yet
            return pages.compare_page(state, request.args, options, None, None, None)
        try:
            page = page_of_runs(view, identifiers or None)
        except QueryError as exc:
            return pages.compare_page(state, request.args, options, identifiers, None, str(exc)), 400
        return pages.compare_page(state, request.args, options, identifiers, page, None)

    @app.get("/sql")
    def sql_view() -> Any:
        query = request.args.get("q", "")
        if not query.strip():
            return pages.sql_page(state, query, None, None, None)
        try:
            columns, rows = sql_answer(query)
        except (QueryError, CatalogError) as exc:
            return pages.sql_page(state, query, None, None, str(exc)), 400
        return pages.sql_page(state, query, columns, rows, None)

    @app.get("/static/<name>")
    def static_file(name: str) -> Any:
        if name == "plotly.min.js":
            plotly = require("plotly")
            folder = Path(plotly.__file__).resolve().parent / "package_data"
            return flask.send_from_directory(folder, name, max_age=86400)
        if name not in ("hermes.css", "hermes.js"):
            raise NotFound(f"no such file: {name}")
        return flask.send_from_directory(_STATIC, name, max_age=0)

    # ------------------------------------------------------------------ API

    @app.get("/api/runs")
    def api_runs() -> Any:
        view = runs_state()
        identifiers = args_list("run", "runs")
        as_csv = wants_csv()
        if request.args.get("all", "") not in ("1", "true", "yes"):
            page = page_of_runs(view, identifiers)
            if as_csv:
                return csv_response(page.columns, page.rows, "runs.csv")
            return json_response(page.as_dict())
        # The whole match, page after page: never all rows in memory at once.
        first = page_of_runs({**view, "page": 1, "per_page": present.MAX_PER_PAGE}, identifiers)

        def pages_of_rows() -> Iterator[tuple[list[str], list[Any]]]:
            page = first
            while True:
                yield from zip(page.paths, page.rows, strict=True)
                if page.page >= page.pages:
                    return
                page = page_of_runs(
                    {**view, "page": page.page + 1, "per_page": present.MAX_PER_PAGE},
                    identifiers,
                )

        if as_csv:
            return csv_response(first.columns, (row for _, row in pages_of_rows()), "runs.csv")

        def generate() -> Iterator[str]:
            yield "["
            for number, (path, row) in enumerate(pages_of_rows()):
                record = {"path": path, **dict(zip(first.columns, row, strict=True))}
                text = json.dumps(present.json_value(record), ensure_ascii=False, allow_nan=False)
                yield ("," if number else "") + "\n" + text
            yield "\n]\n"

        return flask.Response(
            flask.stream_with_context(generate()),
            mimetype="application/json",
            headers={"Content-Disposition": 'attachment; filename="runs.json"'},
        )

    @app.get("/api/run/<path:path>")
    def api_run(path: str) -> Any:
        experiment = state.run(path)
        details = present.run_details(experiment)
        details["url_path"] = path
        table = request.args.get("table")
        if table is None:
            return json_response(details)
        columns, rows = pages.run_table(details, table)
        if wants_csv():
            return csv_response(columns, rows, f"{experiment.identifier}-{table}.csv")
        return json_response([dict(zip(columns, row, strict=True)) for row in rows])

    @app.get("/api/run/<path:path>/result/<name>")
    def api_result(path: str, name: str) -> Any:
        experiment = state.run(path)
        from pyhermes import rundir

        if name not in rundir.list_files(experiment.path_to_experiment, rundir.RESULT_SUFFIX):
            raise NotFound(f"run {experiment.identifier} has no result file {name!r}")
        from pyhermes.result import Result

        try:
            result = Result.load(experiment.file(name))
        except UntrustedFileError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(_result_series(result, int_arg("max_points", present.MAX_POINTS)))

    @app.get("/api/curves")
    def api_curves() -> Any:
        options = curves_options()
        experiments, total = selected_runs()
        data = present.curves_data(
            experiments,
            options["group_by"] or None,
            options["window"],
            options["band"],
            min_runs=options["min_runs"],
            max_points=options["max_points"],
            raw=options["raw"],
        )
        data["matched"] = total
        data["truncated"] = total > len(experiments)
        if wants_csv():
            rows = (
                [line["label"], line["n"], x, y, low, high]
                for line in data["lines"]
                for x, y, low, high in zip(
                    line["x"],
                    line["y"],
                    line["low"] or [None] * len(line["x"]),
                    line["high"] or [None] * len(line["x"]),
                    strict=True,
                )
            )
            return csv_response(["label", "n", "episode", "mean", "low", "high"], rows, "curves.csv")
        return json_response(data)

    @app.get("/api/sql")
    def api_sql() -> Any:
        query = request.args.get("q", "")
        as_csv = wants_csv()
        columns, rows = sql_answer(query)
        if as_csv:
            return csv_response(columns, rows, "query.csv")
        return json_response(
            {
                "columns": columns,
                "rows": [list(row) for row in rows[:SQL_MAX_ROWS]],
                "count": len(rows),
                "truncated": len(rows) > SQL_MAX_ROWS,
            }
        )

    @app.get("/api/status")
    def api_status() -> Any:
        return json_response(state.status())

    @app.post("/api/refresh")
    def api_refresh() -> Any:
        started = state.refresh()
        return json_response({"started": started, **state.status()})

    if sync != "none":
        state.refresh()
    return app


def _host_name(host: str) -> str:
    """The name in a ``Host`` header: ``[::1]:8765`` -> ``::1``, ``localhost:8765`` -> ``localhost``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def _json_default(value: Any) -> Any:
    """JSON data for what ``json.dumps`` cannot write itself (times, numpy values, bytes)."""
    return present.json_value(value)


def _result_series(result: Any, max_points: int) -> dict[str, Any]:
    """The scalar series of a Result (1-D numeric values), downsampled, and the names of the rest."""
    import numpy as np

    series: dict[str, Any] = {}
    others: list[str] = []
    for key, value in result.items():
        try:
            values = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.ndim != 1 or not values.size:
            others.append(str(key))
            continue
        positions = present.downsample(len(values), min(max_points, present.MAX_POINTS))
        series[str(key)] = {
            "x": positions.tolist(),
            "y": [present.json_value(float(item)) for item in values[positions]],
        }
    return {"file": result.file_name, "series": series, "other_keys": others}


def serve(
    root: str | os.PathLike[str] = ".",
    index: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    sync: str = "quick",
) -> None:
    """Serve the runs below ``root`` at ``http://host:port/`` until interrupted.

    Binding to an address other than loopback exposes every page and the SQL box to
    whoever can reach it, without any login: a warning says so.
    """
    from werkzeug.serving import make_server

    app = create_app(root, index=index, sync=sync, host=host)
    server = make_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/runs"
    print(f"hermes serve: the runs below {Path(root).resolve()} at {url} (Ctrl-C stops)", flush=True)
    if host not in LOOPBACK:
        print(
            f"hermes serve: warning: listening on {host}: anyone who can reach this address "
            "can browse every run, read its logs and query the index, with no login",
            flush=True,
        )
    if open_browser:
        import webbrowser

        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
