"""The HTML of the pages of ``hermes serve``: plain functions from data to text, every value escaped.

Tables come from :func:`pyhermes.present.html_table`, the renderer of the notebook
views too. Charts are ``<div class="chart" data-url="/api/curves?...">`` elements that
``hermes.js`` fills with plotly.js from the JSON API.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pyhermes import present
from pyhermes.web.data import RUN_TABLES, run_table
from pyhermes.web.params import parse_sort_key, sortable, tag_filter
from pyhermes.web.state import TOKEN_META

if TYPE_CHECKING:
    from pyhermes.web.state import HermesApp

__all__ = [
    "layout",
    "error_page",
    "runs_page",
    "run_page",
    "run_table",
    "RUN_TABLES",
    "compare_page",
    "sql_page",
    "query_string",
    "tag_chips",
]

PER_PAGE_CHOICES = (25, 50, 100, 200, 500)

e = html.escape


def query_string(values: Mapping[str, Any]) -> str:
    """Return ``?a=1&b=2`` for the values that are set (lists joined by commas), or ``""``."""
    pairs = []
    for key, value in values.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else ""


def run_url(path: str) -> str:
    """The URL of the Run page of the run at ``path`` (relative to the index root)."""
    return "/run/" + quote(path, safe="/")


def layout(state: HermesApp, title: str, active: str, body: str, *, charts: bool = False) -> str:
    """Return a whole page: the navigation bar, the sync state and ``body``."""
    nav = "".join(
        f'<a href="{href}" class="{"active" if name == active else ""}" id="nav-{name.lower()}">'
        f"{name}</a>"
        for name, href in (("Runs", "/runs"), ("Compare", "/compare"), ("SQL", "/sql"))
    )
    scripts = '<script src="/static/plotly.min.js"></script>' if charts else ""
    root = e(str(state.status()["root"]))
    token = (
        f'<meta name="{TOKEN_META}" content="{e(state.token)}">\n'
        if state.writable and state.token
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{token}<title>{e(title)} · hermes</title>
<link rel="stylesheet" href="/static/hermes.css">
{scripts}<script src="/static/hermes.js" defer></script>
</head><body data-rendered="{time.time():.3f}">
<header><span class="brand">hermes</span>{nav}
<span class="root" title="the folder served">{root}</span>
<button id="refresh" type="button" title="sync the index with the disk">refresh</button>
<span id="sync-status"></span></header>
<main>
{body}
</main></body></html>
"""


def error_page(state: HermesApp, message: str, status: int) -> str:
    """Return a page showing ``message`` (an error of the user's request)."""
    body = f'<h1>{"Not found" if status == 404 else "Bad request"}</h1>'
    body += f'<pre class="error" id="error">{e(message)}</pre>'
    return layout(state, "error", "", body)


def _downloads(api: str, query: Mapping[str, Any], label: str = "") -> str:
    csv_url = api + query_string({**query, "format": "csv"})
    json_url = api + query_string({**query, "format": "json"})
    name = f"{label} " if label else ""
    return (
        f'<span class="downloads">{e(name)}download '
        f'<a href="{e(csv_url)}" class="download-csv">CSV</a> · '
        f'<a href="{e(json_url)}" class="download-json">JSON</a></span>'
    )


def tag_chips(tags: Sequence[str], view: Mapping[str, Any] | None = None) -> str:
    """Return the tags as chips (``<a class="tag-chip">``), each a link to the Runs page
    filtered by ``tag = "<tag>"`` (keeping the sort, columns and page size of ``view``)."""
    kept = {key: (view or {}).get(key) for key in ("sort", "columns", "per_page")}
    if kept.get("per_page") == 50:
        kept["per_page"] = None
    return "".join(
        f'<a class="tag-chip" data-tag="{e(tag)}" title="the runs tagged {e(tag)}" '
        f'href="{e("/runs" + query_string({"where": tag_filter(tag), **kept}))}">{e(tag)}</a>'
        for tag in tags
    )


def _runs_table(
    page: present.RunsPage,
    view: Mapping[str, Any],
    *,
    sort_links: bool,
    select: bool,
    tags: Sequence[Sequence[str]] | None = None,
) -> str:
    """The table of a page of runs: identifier links, sortable headers, selection boxes.

    ``tags`` (row by row) are shown as chips: in the ``tags`` column when it is shown,
    else beside the identifier.
    """
    current = page.sort[0] if page.sort else ""

    def header(name: str) -> str:
        if name == "":
            return '<input type="checkbox" id="select-all" title="select every run shown">'
        if not sort_links or not sortable(name):
            return e(name)
        sorted_by, descending = parse_sort_key(current) if current else ("", False)
        ascending = sorted_by == name and not descending
        descending = sorted_by == name and descending
        target = f"{name}:desc" if ascending else f"{name}:asc"
        arrow = " ▲" if ascending else " ▼" if descending else ""
        url = "/runs" + query_string({**view, "sort": target, "page": None})
        return f'<a href="{e(url)}" class="sort" data-column="{e(name)}">{e(name)}{arrow}</a>'

    columns = ([""] if select else []) + page.columns
    rows = [([identifier] if select else []) + row for identifier, row in
            zip(page.identifiers, page.rows, strict=True)]
    identifier_column = columns.index("identifier") if "identifier" in columns else -1
    tags_column = columns.index("tags") if "tags" in columns else -1

    def chips(row: int) -> str:
        if tags is None or not tags[row]:
            return ""
        return f'<span class="tags">{tag_chips(tags[row], view)}</span>'

    def cell(row: int, column: int, value: Any) -> str | None:
        if select and column == 0:
            return (
                f'<input type="checkbox" name="run" value="{e(str(value))}" class="select-run">'
            )
        if column == identifier_column:
            link = f'<a href="{e(run_url(page.paths[row]))}" class="run-link">{e(str(value))}</a>'
            return link + (chips(row) if tags_column < 0 else "")
        if column == tags_column and tags is not None:
            return chips(row)
        return None

    return present.html_table(columns, rows, header=header, cell=cell, table_id="runs")


def runs_page(
    state: HermesApp,
    view: Mapping[str, Any],
    page: present.RunsPage | None,
    error: str | None,
    tags: Sequence[Sequence[str]] | None = None,
) -> str:
    """The Runs page: the filter box, the count, the pager, the column picker and the table;
    on a writable server, the curation bar acting on the runs ticked."""
    where = view.get("where", "")
    state_fields = {
        "where": where,
        "sort": view.get("sort") or "",
        "columns": view.get("columns") or None,
        "per_page": view.get("per_page") if view.get("per_page") != 50 else None,
    }
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{e(",".join(value) if isinstance(value, list) else str(value))}">'
        for name, value in state_fields.items()
        if value and name not in ("where", "per_page")
    )
    per_page = view.get("per_page") or 50
    options = "".join(
        f'<option value="{size}"{" selected" if size == per_page else ""}>{size} per page</option>'
        for size in PER_PAGE_CHOICES
    )
    body = [
        "<h1>Runs</h1>",
        f'<form method="get" action="/runs" id="filter-form" class="bar">'
        f'<input type="text" name="where" id="where" value="{e(where)}" '
        f'placeholder="--doubledqn and -lr &lt; 0.01 and final_mean &gt; 200" spellcheck="false">'
        f"{hidden}"
        f'<select name="per_page" id="per-page">{options}</select>'
        f'<button type="submit" id="apply">Filter</button></form>',
        '<p class="hint">Same expressions as <code>hermes ls --where</code>: '
        "<code>--doubledqn</code>, <code>-lr &lt; 0.01</code>, <code>final_mean &gt; 200</code>, "
        "<code>not finished</code>, <code>and</code>, <code>or</code>, parentheses, "
        '<code>tag = paper</code> (or a click on a tag), <code>note ~ "diverged"</code>.</p>',
    ]
    if error is not None:
        body.append(f'<pre class="error" id="error">{e(error)}</pre>')
    if page is not None:
        body.append(_runs_pager(page, state_fields))
        body.append(_column_picker(page, state_fields))
        if state.writable:
            body.append(_curation_bar(archive=True))
        compare_all = "/compare" + query_string({"where": where, "sort": state_fields["sort"]})
        body.append(
            '<form method="get" action="/compare" id="select-form">'
            '<div class="bar"><button type="submit" id="compare-selected">Compare selected</button>'
            f' <a href="{e(compare_all)}" id="compare-all">compare all matching runs</a></div>'
            + _runs_table(page, state_fields, sort_links=True, select=True, tags=tags)
            + "</form>"
        )
        body.append(_runs_pager(page, state_fields))
    return layout(state, "Runs", "Runs", "\n".join(body))


def _curation_bar(*, archive: bool, run: str | None = None) -> str:
    """The controls of a writable server: add or remove a tag, add a note, archive.

    They act on the runs ticked in the table, or on ``run`` (an identifier) when given;
    ``hermes.js`` posts them to ``/api/runs/...`` with the page's token.
    """
    fixed = f' data-run="{e(run)}"' if run is not None else ""
    chosen = "" if run is not None else '<span class="hint" id="selected-count">none ticked</span>'
    archiving = (
        '<button type="button" id="archive-selected" class="danger">Archive…</button>'
        '<dialog id="archive-dialog"><form method="dialog"><p id="archive-question"></p>'
        '<button value="cancel" id="archive-cancel">Cancel</button> '
        '<button value="archive" id="archive-confirm" class="danger">Archive</button>'
        "</form></dialog>"
        if archive
        else ""
    )
    return (
        f'<div class="bar curation" id="curation"{fixed}>{chosen}'
        '<input type="text" id="tag-input" placeholder="tag" maxlength="200" spellcheck="false">'
        '<button type="button" id="add-tag">Add tag</button>'
        '<button type="button" id="remove-tag">Remove tag</button>'
        '<input type="text" id="note-input" placeholder="note" spellcheck="false">'
        '<button type="button" id="add-note">Add note</button>'
        f'{archiving}<span id="curation-status" role="status"></span></div>'
    )


def _runs_pager(page: present.RunsPage, view: Mapping[str, Any]) -> str:
    def link(number: int, text: str, name: str) -> str:
        if number < 1 or number > page.pages or number == page.page:
            return f'<span class="disabled">{text}</span>'
        url = "/runs" + query_string({**view, "page": number if number > 1 else None})
        return f'<a href="{e(url)}" class="page-{name}">{text}</a>'

    noun = "run matches" if page.total == 1 else "runs match"
    first = (page.page - 1) * page.per_page + 1
    last = min(page.total, page.page * page.per_page)
    shown = f"{first:,}–{last:,}" if page.total else "none"
    api_query = {**view, "all": 1}
    return (
        f'<div class="bar pager"><span class="count" id="count" data-total="{page.total}">'
        f"{page.total:,} {noun}</span> · showing {shown} · page {page.page:,} of {page.pages:,} "
        f"{link(1, '« first', 'first')} {link(page.page - 1, '‹ previous', 'previous')} "
        f"{link(page.page + 1, 'next ›', 'next')} {link(page.pages, 'last »', 'last')} "
        f"{_downloads('/api/runs', api_query)}</div>"
    )


def _column_picker(page: present.RunsPage, view: Mapping[str, Any]) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" name="column" value="{e(name)}"'
        f'{" checked" if name in page.columns else ""}> {e(name)}</label>'
        for name in page.available
    )
    hidden = "".join(
        f'<input type="hidden" name="{key}" value="{e(str(view[key]))}">'
        for key in ("where", "sort", "per_page")
        if view.get(key)
    )
    return (
        '<details id="columns"><summary>Columns</summary>'
        f'<form method="get" action="/runs" class="columns">{hidden}{boxes}'
        '<div><button type="submit" id="apply-columns">Show these columns</button> '
        '<a href="/runs">default columns</a></div></form></details>'
    )


def _tail_block(title: str, lines: list[str] | None, element_id: str) -> str:
    if lines is None:
        text = "(no file)"
    elif not lines:
        text = "(empty)"
    else:
        text = "\n".join(lines)
    return f'<h3>{e(title)}</h3><pre class="log" id="{element_id}">{e(text)}</pre>'


def _curation_card(
    state: HermesApp, identifier: str, tags: Sequence[str], notes: Sequence[Any]
) -> str:
    """The tags (chips) and notes (newest first, as given) of a run; its curation bar when writable."""
    chips = tag_chips(tags) if tags else '<span class="hint">(none)</span>'
    items = "".join(
        '<li class="note">'
        f'<span class="note-time">{e(present.text_value(note.time, compact=True) if note.time else "(no time)")}</span>'
        f'<div class="note-text">{e(note.text)}</div></li>'
        for note in notes
    ) or '<li class="hint">(none)</li>'
    bar = _curation_bar(archive=False, run=identifier) if state.writable else ""
    return (
        '<section class="card wide" id="curation-card">'
        f'<h3>Tags</h3><p class="tags" id="run-tags">{chips}</p>{bar}'
        f'<h3>Notes</h3><ul id="run-notes">{items}</ul></section>'
    )


def run_page(
    state: HermesApp,
    path: str,
    details: Mapping[str, Any],
    tags: Sequence[str] = (),
    notes: Sequence[Any] = (),
) -> str:
    """The Run page: everything ``hermes show`` prints, its tags and notes (newest first, as
    given), the learning curve, result series."""
    identifier = str(details["identifier"])
    api = "/api/run/" + quote(path, safe="/")
    curve_url = "/api/curves" + query_string({"runs": identifier, "raw": 1, "window": 100})
    sections = []
    for table, title in (
        ("fields", "Run"),
        ("scores", "Score summary"),
        ("args", "Arguments (exec_arguments)"),
        ("info", "Info (hermes.info)"),
        ("files", "Files"),
    ):
        columns, rows = run_table(details, table)
        sections.append(
            f'<section class="card" id="table-{table}"><h3>{e(title)}</h3>'
            f"{present.html_table(columns, rows)}"
            f"<p>{_downloads(api, {'table': table})}</p></section>"
        )
    pth = "".join(f"<li>{e(name)}</li>" for name in details["pth_files"]) or "<li>(none)</li>"
    results = "".join(
        f'<li>{e(name)} <button type="button" class="plot-result" '
        f'data-url="{e(api + "/result/" + quote(name))}" data-target="result-chart">'
        "plot scalar series</button></li>"
        for name in details["result_files"]
    ) or "<li>(none)</li>"
    body = f"""<h1 id="run-title">{e(identifier)}</h1>
<p class="path">{e(path)} · <a href="{e(api)}">JSON</a> ·
<a href="{e('/compare' + query_string({'runs': identifier}))}">open in compare</a></p>
{_curation_card(state, identifier, tags, notes)}
<section class="card wide"><h3>Learning curve</h3>
<form class="bar" id="window-form" onsubmit="return hermesRedraw(this)">
<label>smoothing window <input type="number" name="window" min="1" value="100" id="window"></label>
<button type="submit">redraw</button>
<span class="hint">scores, their trailing mean and ± one standard deviation over the window</span>
</form>
<div class="chart" id="curve-chart" data-url="{e(curve_url)}"></div></section>
<div class="cards">{"".join(sections)}</div>
<section class="card wide"><h3>State dicts (.pth)</h3><ul id="pth-files">{pth}</ul>
<h3>Results (.result)</h3><ul id="result-files">{results}</ul>
<div class="chart" id="result-chart" hidden></div></section>
<section class="card wide">{_tail_block("stdout.log (last lines)", details["stdout_tail"], "stdout")}
{_tail_block("stderr.log (last lines)", details["stderr_tail"], "stderr")}</section>
"""
    return layout(state, identifier, "", body, charts=True)


def compare_page(
    state: HermesApp,
    args: Mapping[str, Any],
    options: Mapping[str, Any],
    identifiers: Sequence[str] | None,
    page: present.RunsPage | None,
    error: str | None,
    tags: Sequence[Sequence[str]] | None = None,
) -> str:
    """The Compare page: grouping options, the overlaid curves, the table of the runs compared."""
    runs = ",".join(identifiers or ())
    where = args.get("where", "")
    band = args.get("band", "std")
    view = {
        "runs": runs,
        "where": "" if runs else where,
        "sort": args.get("sort", ""),
        "group_by": options["group_by"],
        "window": options["window"] if options["window"] != 100 else None,
        "band": band if band != "std" else None,
        "min_runs": options["min_runs"],
    }
    band_options = "".join(
        f'<option value="{value}"{" selected" if value == band else ""}>{text}</option>'
        for value, text in (("std", "± std"), ("ci95", "95% interval"), ("none", "no band"))
    )
    selection = (
        f'<input type="hidden" name="runs" value="{e(runs)}">'
        f'<span class="hint">{len(present.split_list(runs))} runs selected</span>'
        if runs
        else f'<label>filter <input type="text" name="where" id="where" value="{e(where)}" '
        'placeholder="every run" spellcheck="false"></label>'
    )
    body = [
        "<h1>Compare</h1>",
        f'<form method="get" action="/compare" id="compare-form" class="bar">{selection}'
        f'<label>group by <input type="text" name="group_by" id="group-by" '
        f'value="{e(options["group_by"])}" placeholder="-lr,--doubledqn" spellcheck="false"></label>'
        f'<label>window <input type="number" name="window" id="window" min="1" '
        f'value="{options["window"]}"></label>'
        f'<label>band <select name="band" id="band">{band_options}</select></label>'
        f'<button type="submit" id="draw">Draw</button></form>',
    ]
    if error is not None:
        body.append(f'<pre class="error" id="error">{e(error)}</pre>')
    elif page is None:
        body.append(
            '<p id="no-runs">Choose the runs to compare: tick them on the '
            '<a href="/runs">Runs</a> page and press <em>Compare selected</em>, or give a '
            "filter above (empty: every run) and press <em>Draw</em>.</p>"
        )
    if page is not None:
        if page.total == 0:
            body.append('<p id="no-runs">No run selected: pick runs on the '
                        '<a href="/runs">Runs</a> page, or give a filter.</p>')
        else:
            curves_url = "/api/curves" + query_string(view)
            body.append(
                '<section class="card wide"><div class="chart" id="compare-chart" '
                f'data-url="{e(curves_url)}" data-summary="compare-lines"></div>'
                '<div id="compare-lines"></div>'
                f"<p>{_downloads('/api/curves', view, 'curves')}</p></section>"
            )
            more = (
                f" (the first {page.per_page} shown)" if page.total > page.per_page else ""
            )
            body.append(
                f'<h3><span id="count" data-total="{page.total}">{page.total:,}</span> runs'
                f"{more} {_downloads('/api/runs', {**view, 'all': 1}, 'table')}</h3>"
            )
            body.append(_runs_table(page, view, sort_links=False, select=False, tags=tags))
    return layout(state, "Compare", "Compare", "\n".join(body), charts=True)


def sql_page(
    state: HermesApp,
    query: str,
    columns: Sequence[str] | None,
    rows: Sequence[Sequence[Any]] | None,
    error: str | None,
) -> str:
    """The SQL page: the query box, the examples of ``docs/schema.md`` and the answer."""
    from pyhermes.web.examples import EXAMPLE_QUERIES
    from pyhermes.web.state import SQL_MAX_ROWS

    examples = "".join(
        f'<li><a href="{e("/sql" + query_string({"q": sql}))}" class="example">{e(title)}</a></li>'
        for title, sql in EXAMPLE_QUERIES
    )
    body = [
        "<h1>SQL</h1>",
        '<p class="hint">One read-only statement (SELECT, WITH, VALUES, EXPLAIN) over the views '
        "<code>runs</code>, <code>run_args</code> and <code>run_info</code>, as "
        "<code>hermes sql</code>; writes are refused.</p>",
        '<form method="get" action="/sql" id="sql-form">'
        f'<textarea name="q" id="query" rows="8" spellcheck="false">{e(query)}</textarea>'
        '<div><button type="submit" id="run-query">Run</button></div></form>',
        f'<details id="examples" open><summary>Examples</summary><ul>{examples}</ul></details>',
    ]
    if error is not None:
        body.append(f'<pre class="error" id="error">{e(error)}</pre>')
    if columns is not None and rows is not None:
        shown = rows[:SQL_MAX_ROWS]
        note = f"{len(rows):,} rows" if len(rows) != 1 else "1 row"
        if len(rows) > len(shown):
            note += f", the first {len(shown):,} shown"
        body.append(
            f'<div class="bar"><span id="count" data-total="{len(rows)}">{note}</span> '
            f"{_downloads('/api/sql', {'q': query})}</div>"
        )
        body.append(present.html_table(columns, shown, table_id="sql-result"))
    return layout(state, "SQL", "SQL", "\n".join(body))
