"""The views of read-only SQL over the index: the SQL page ``/sql`` and ``GET /api/sql``.

One statement over the views of ``docs/schema.md``, refused if it would write (the
guarantee of ``hermes sql``).
"""

from __future__ import annotations

from flask import Response, request

from pyhermes.errors import CatalogError, QueryError
from pyhermes.web import data, pages_sql, params
from pyhermes.web.responses import csv_response, json_response
from pyhermes.web.state import SQL_MAX_ROWS, served

__all__ = ["sql_page", "api_sql"]


def sql_page() -> str | tuple[str, int]:
    """``GET /sql``: return the SQL page, with the answer of ``q`` when given.

    A malformed or writing statement is shown in the page with a 400.
    """
    state = served()
    query = params.text_arg(request.args, "q")
    if not query.strip():
        return pages_sql.sql_page(state, query, None, None, None)
    try:
        columns, rows = data.sql_answer(state.catalog, query)
    except (QueryError, CatalogError) as exc:
        return pages_sql.sql_page(state, query, None, None, str(exc)), 400
    return pages_sql.sql_page(state, query, columns, rows, None)


def api_sql() -> Response:
    """``GET /api/sql``: return the answer of ``q`` as ``{columns, rows, count, truncated}`` or CSV.

    JSON holds the first :data:`~pyhermes.web.state.SQL_MAX_ROWS` rows; ``query.csv`` all of them.

    Raises:
        QueryError: a malformed statement or a bad format (a 400).
        CatalogError: a statement that would write (a 400), or the database failed (a 503).
    """
    query = params.text_arg(request.args, "q")
    as_csv = params.wants_csv(request.args)
    columns, rows = data.sql_answer(served().catalog, query)
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
