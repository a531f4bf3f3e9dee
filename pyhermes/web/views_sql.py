"""The views of read-only SQL over the index: the SQL page ``/sql`` and ``GET /api/sql``.

One statement over the views of ``docs/schema.md``, refused if it would write (the
guarantee of ``hermes sql``). The database stops a statement that runs longer than the
app's time limit (``hermes serve --sql-timeout``, default
:data:`~pyhermes.web.state.DEFAULT_SQL_TIMEOUT` seconds), and only the first rows are
fetched: :data:`~pyhermes.web.state.SQL_MAX_ROWS` for the page and JSON,
:data:`SQL_CSV_MAX_ROWS` for the CSV download.
"""

from __future__ import annotations

from flask import Response, current_app, request

from pyhermes.errors import CatalogError, QueryError
from pyhermes.web import pages_sql, params
from pyhermes.web.responses import csv_response, json_response
from pyhermes.web.state import DEFAULT_SQL_TIMEOUT, SQL_MAX_ROWS, SQL_TIMEOUT_CONFIG, served

__all__ = ["sql_page", "api_sql", "SQL_CSV_MAX_ROWS"]

#: The most rows of the CSV download of ``/api/sql`` (``hermes sql`` has no such limit).
SQL_CSV_MAX_ROWS = 100_000


def _timeout() -> float:
    """The time limit of a statement of this app, in seconds."""
    return float(current_app.config.get(SQL_TIMEOUT_CONFIG, DEFAULT_SQL_TIMEOUT))


def sql_page() -> str | tuple[str, int]:
    """``GET /sql``: return the SQL page, with the first rows of the answer of ``q`` when given.

    A malformed or writing statement, or one stopped by the time limit, is shown in the
    page with a 400.
    """
    state = served()
    query = params.text_arg(request.args, "q")
    if not query.strip():
        return pages_sql.sql_page(state, query, None, None, None)
    try:
        result = state.catalog.sql(query, timeout=_timeout(), limit=SQL_MAX_ROWS)
    except (QueryError, CatalogError) as exc:
        return pages_sql.sql_page(state, query, None, None, str(exc)), 400
    return pages_sql.sql_page(
        state, query, result.columns, result.rows, None, truncated=result.truncated
    )


def api_sql() -> Response:
    """``GET /api/sql``: return the answer of ``q`` as ``{columns, rows, count, truncated}`` or CSV.

    JSON holds the first :data:`~pyhermes.web.state.SQL_MAX_ROWS` rows (``count`` of
    them; ``truncated`` when the statement had more), CSV the first :data:`SQL_CSV_MAX_ROWS`.

    Raises:
        QueryError: a malformed statement, one stopped by the time limit, or a bad format (a 400).
        CatalogError: a statement that would write (a 400), or the database failed (a 503).
    """
    query = params.text_arg(request.args, "q")
    as_csv = params.wants_csv(request.args)
    limit = SQL_CSV_MAX_ROWS if as_csv else SQL_MAX_ROWS
    result = served().catalog.sql(query, timeout=_timeout(), limit=limit)
    if as_csv:
        return csv_response(result.columns, result.rows, "query.csv")
    return json_response(
        {
            "columns": result.columns,
            "rows": [list(row) for row in result.rows],
            "count": len(result.rows),
            "truncated": result.truncated,
        }
    )
