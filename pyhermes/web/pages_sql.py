"""The HTML of the SQL page of ``hermes serve``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyhermes import present
from pyhermes.web.pages import (
    downloads,
    e,
    layout,
    query_string,
)

if TYPE_CHECKING:
    from pyhermes.web.state import HermesApp

__all__ = ["sql_page"]


def sql_page(
    state: HermesApp,
    query: str,
    columns: Sequence[str] | None,
    rows: Sequence[Sequence[Any]] | None,
    error: str | None,
    *,
    truncated: bool = False,
) -> str:
    """The SQL page: the query box, the examples of ``docs/schema.md`` and the answer.

    ``rows`` are the first rows of the answer; ``truncated`` says the statement had more
    (a note says only the first are shown).
    """
    from pyhermes.web.examples import EXAMPLE_QUERIES

    examples = "".join(
        f'<li><a href="{e("/sql" + query_string({"q": sql}))}" class="example">{e(title)}</a></li>'
        for title, sql in EXAMPLE_QUERIES
    )
    body = [
        "<h1>SQL</h1>",
        '<p class="hint">One read-only statement (SELECT, WITH, VALUES, EXPLAIN) over the views '
        "<code>runs</code>, <code>run_args</code> and <code>run_info</code>, as "
        "<code>hermes sql</code>; writes are refused, a statement that runs too long is "
        "stopped, and the first rows are shown.</p>",
        '<form method="get" action="/sql" id="sql-form">'
        f'<textarea name="q" id="query" rows="8" spellcheck="false">{e(query)}</textarea>'
        '<div><button type="submit" id="run-query">Run</button></div></form>',
        f'<details id="examples" open><summary>Examples</summary><ul>{examples}</ul></details>',
    ]
    if error is not None:
        body.append(f'<pre class="error" id="error">{e(error)}</pre>')
    if columns is not None and rows is not None:
        if truncated:
            note = f"the first {len(rows):,} rows (the statement has more: <code>hermes sql</code> gives every row)"
        else:
            note = f"{len(rows):,} rows" if len(rows) != 1 else "1 row"
        body.append(
            f'<div class="bar"><span id="count" data-total="{len(rows)}" '
            f'data-truncated="{"true" if truncated else "false"}">{note}</span> '
            f"{downloads('/api/sql', {'q': query})}</div>"
        )
        body.append(present.html_table(columns, rows, table_id="sql-result"))
    return layout(state, "SQL", "SQL", "\n".join(body))
