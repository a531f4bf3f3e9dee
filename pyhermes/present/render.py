"""Tables rendered: text for the terminal, HTML for the web pages and the notebook views."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pyhermes.present.values import column_decimals, fixed_value, is_number

if TYPE_CHECKING:
    from pyhermes.storage import Experiment

__all__ = ["MAX_CELL", "MIN_CELL", "format_table", "html_table", "experiments_html", "experiment_html", "sql_html"]

#: Longest cell of a terminal table, in characters; longer values are shortened with an ellipsis.
MAX_CELL = 40
#: A table fitted to a narrow terminal never shrinks a column below this width.
MIN_CELL = 6


def format_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None = None,
    ellipsis: str = "…",
) -> str:
    """Return ``rows`` of text under ``columns`` as left-aligned columns two spaces apart.

    A header line and a line of dashes come first. Cells longer than
    :data:`MAX_CELL` are shortened with ``ellipsis``; with ``width`` (the terminal
    width) the widest columns shrink further, down to :data:`MIN_CELL`, to fit it.
    """
    cells = [[_one_line(text) for text in row] for row in rows]
    widths = [len(name) for name in columns]
    for row in cells:
        for position, text in enumerate(row):
            widths[position] = max(widths[position], len(text))
    widths = [min(value, MAX_CELL) for value in widths]
    if width is not None:
        while sum(widths) + 2 * (len(widths) - 1) > width:
            widest = max(range(len(widths)), key=lambda i: widths[i]) if widths else 0
            if not widths or widths[widest] <= MIN_CELL:
                break
            widths[widest] -= 1

    def line(texts: Sequence[str]) -> str:
        parts = [
            _shorten(text, size, ellipsis).ljust(size)
            for text, size in zip(texts, widths, strict=False)
        ]
        return "  ".join(parts).rstrip() + "\n"

    output = [line(list(columns)), line(["-" * size for size in widths])]
    output.extend(line(row) for row in cells)
    return "".join(output)


def _one_line(text: str) -> str:
    return "".join(" " if char in "\n\r\t\v\f" else char for char in text)


def _shorten(text: str, size: int, ellipsis: str) -> str:
    if len(text) <= size:
        return text
    if size <= len(ellipsis):
        return text[:size]
    return text[: size - len(ellipsis)] + ellipsis


#: Inline style of the tables of notebooks (the web pages have their own style sheet).
_NOTEBOOK_STYLE = (
    "<style>.hermes-table td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".hermes-table td,.hermes-table th{padding:2px 8px;white-space:nowrap}"
    ".hermes-note{color:#666;font-size:90%}</style>"
)


def html_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    header: Callable[[str], str] | None = None,
    cell: Callable[[int, int, Any], str | None] | None = None,
    table_id: str | None = None,
    column_classes: Sequence[str] | None = None,
    align_numbers: bool = False,
) -> str:
    """Return an HTML ``<table class="hermes-table">`` of raw values, every text escaped.

    Values are shown with :func:`text_value` (compact); numbers get ``class="num"``.
    With ``align_numbers`` the floats of a column share one number of decimals (see
    :func:`~pyhermes.present.values.column_decimals`), so that they line up right-aligned.

    Args:
        columns: the column names.
        rows: the rows of raw values.
        header: returns the HTML of a column's header cell content (default: the escaped name).
        cell: returns the HTML of a cell's content for (row, column, value), or ``None``
            for the default rendering.
        table_id: the ``id`` attribute of the table.
        column_classes: a ``class`` for the cells of each column (``""`` for none).
        align_numbers: give the floats of each column one number of decimals.
    """
    escape = html.escape
    identity = f' id="{escape(table_id)}"' if table_id else ""
    classes = list(column_classes or [])
    classes += [""] * (len(columns) - len(classes))
    decimals = (
        [column_decimals([row[at] for row in rows]) for at in range(len(columns))]
        if align_numbers
        else [None] * len(columns)
    )
    parts = [f'<table class="hermes-table"{identity}>']
    parts.append("<thead><tr>")
    for at, name in enumerate(columns):
        kind = f' class="{escape(classes[at])}"' if classes[at] else ""
        parts.append(f"<th{kind}>{header(name) if header else escape(name)}</th>")
    parts.append("</tr></thead><tbody>")
    for row_number, row in enumerate(rows):
        parts.append("<tr>")
        for column_number, value in enumerate(row):
            content = cell(row_number, column_number, value) if cell else None
            if content is None:
                content = escape(fixed_value(value, decimals[column_number]))
            kinds = " ".join(
                kind for kind in (classes[column_number], "num" if is_number(value) else "") if kind
            )
            attributes = f' class="{escape(kinds)}"' if kinds else ""
            parts.append(f"<td{attributes}>{content}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def experiments_html(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    total: int,
    *,
    newest_first: bool = False,
) -> str:
    """Return a compact HTML table of runs (the notebook view of an ExperimentList).

    ``rows`` are the first runs of the list under ``columns`` (see
    :func:`pyhermes.present.list_table`), ``total`` how many runs the list holds,
    ``newest_first`` whether the rows are its newest runs; a note says how many more
    there are.
    """
    note = f"{total:,} runs" if total != 1 else "1 run"
    if total > len(rows):
        which = "newest" if newest_first else "first"
        note += f"; the {which} {len(rows)} shown, {total - len(rows):,} more"
    elif newest_first and total > 1:
        note += ", newest first"
    return (
        _NOTEBOOK_STYLE
        + html_table(columns, rows, align_numbers=True)
        + f'<div class="hermes-note">ExperimentList: {html.escape(note)}</div>'
    )


def experiment_html(experiment: Experiment) -> str:
    """Return an HTML view of one run (the notebook view of an Experiment): fields, tags, args,
    scores and notes."""
    from pyhermes.index.query.filters import RUN_FIELDS, run_value

    fields = [(name, run_value(experiment, name)) for name in RUN_FIELDS]
    fields.append(("tags", ", ".join(experiment.tags)))
    summary = list(experiment.score_summary.as_dict().items())
    args = [(line,) for line in experiment.exec_arg_lines] or [("(none)",)]
    notes = [(note.time, note.text) for note in experiment.notes]
    return (
        _NOTEBOOK_STYLE
        + f"<div><b>Experiment {html.escape(experiment.identifier)}</b></div>"
        + '<div style="display:flex;gap:24px;align-items:flex-start">'
        + html_table(["field", "value"], fields)
        + html_table(["argument"], args)
        + html_table(["score", "value"], summary)
        + (html_table(["noted", "note"], notes) if notes else "")
        + "</div>"
    )


def sql_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = 50) -> str:
    """Return the notebook view of a query result: the first ``limit`` rows and a count."""
    note = f"{len(rows):,} rows" if len(rows) != 1 else "1 row"
    if len(rows) > limit:
        note += f"; the first {limit} shown"
    return (
        _NOTEBOOK_STYLE
        + html_table(columns, rows[:limit])
        + f'<div class="hermes-note">{html.escape(note)}</div>'
    )
