"""The HTML shared by the pages of ``hermes serve`` (layout, tables, chips) and the Runs page.

Every value is escaped. The other pages are ``pages_run``, ``pages_compare`` and ``pages_sql``.

Tables come from :func:`pyhermes.present.html_table`, the renderer of the notebook
views too. Charts are ``<div class="chart" data-url="/api/curves?...">`` elements that
``charts.js`` fills with plotly.js from the JSON API.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from pyhermes import present
from pyhermes.web.params import parse_sort_key, sortable, tag_filter
from pyhermes.web.state import TOKEN_META

if TYPE_CHECKING:
    from pyhermes.web.state import HermesApp

__all__ = [
    "layout",
    "error_page",
    "runs_page",
    "runs_table",
    "same_line",
    "curation_bar",
    "downloads",
    "run_url",
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
        for name, href in (
            ("Runs", "/runs"),
            ("Compare", "/compare"),
            ("Params", "/params"),
            ("SQL", "/sql"),
        )
    )
    scripts = (
        '<script src="/static/plotly.min.js"></script>\n'
        '<script src="/static/charts.js" defer></script>\n'
        if charts
        else ""
    )
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
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<meta name="color-scheme" content="light dark">
<link rel="stylesheet" href="/static/hermes.css">
<script src="/static/hermes.js" defer></script>
<script src="/static/status.js" defer></script>
{scripts}
</head><body data-rendered="{time.time():.3f}">
<header><span class="brand">hermes</span>{nav}
<span class="root" title="the folder served">{root}</span>
<button id="refresh" type="button" title="sync the index with the disk">refresh</button>
<span id="sync-status"></span></header>
<main>
{body}
</main></body></html>
"""


_ERROR_TITLES = {
    403: "Refused", 404: "Not found", 405: "Method not allowed", 413: "Request too large",
    500: "Server error", 503: "Index unavailable",
}


def error_page(state: HermesApp, message: str, status: int) -> str:
    """Return a page showing ``message`` (an error of the user's request), titled by ``status``."""
    body = f"<h1>{e(_ERROR_TITLES.get(status, 'Bad request'))}</h1>"
    body += f'<pre class="error" id="error">{e(message)}</pre>'
    return layout(state, "error", "", body)


def downloads(api: str, query: Mapping[str, Any], label: str = "") -> str:
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


def runs_table(
    page: present.RunsPage,
    view: Mapping[str, Any],
    *,
    sort_links: bool,
    select: bool,
    tags: Sequence[Sequence[str]] | None = None,
    fold_same: bool = False,
) -> str:
    """The table of a page of runs: identifier links, sortable headers, selection boxes.

    ``tags`` (row by row) are shown as chips: in the ``tags`` column when it is shown,
    else beside the identifier. With ``fold_same`` the columns of
    :attr:`~pyhermes.present.RunsPage.same_for_all` are left out (:func:`same_line` shows
    them). The table scrolls in its own box (``div.table-scroll``), under a sticky header,
    with the selection boxes and the identifiers frozen at its left; floats of a column
    share one number of decimals.
    """
    current = page.sort[0] if page.sort else ""
    folded = set(page.same_for_all) if fold_same else set()
    kept = [at for at, name in enumerate(page.columns) if name not in folded]

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

    columns = ([""] if select else []) + [page.columns[at] for at in kept]
    rows = [([identifier] if select else []) + [row[at] for at in kept] for identifier, row in
            zip(page.identifiers, page.rows, strict=True)]
    identifier_column = columns.index("identifier") if "identifier" in columns else -1
    tags_column = columns.index("tags") if "tags" in columns else -1
    classes = ["" for _ in columns]
    if select:
        classes[0] = "frozen select-cell"
    if identifier_column >= 0:
        classes[identifier_column] = "frozen identifier-cell" + (" after-select" if select else "")

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

    table = present.html_table(
        columns, rows, header=header, cell=cell, table_id="runs", column_classes=classes,
        align_numbers=True,
    )
    return f'<div class="table-scroll" id="runs-scroll">{table}</div>'


#: Short names of the run fields in the "same for all" line.
_SAME_LABELS = {"script_name": "script", "experiment_name": "experiment", "commit_hash": "commit"}


def same_line(page: present.RunsPage) -> str:
    """The line above a runs table naming the columns every matched run shares, or ``""``.

    For example ``same for all: script train_dqn, experiment sweep, -bs 64, --doubledqn``
    (a flag or positional set on every run is its bare name).
    """
    if not page.same_for_all:
        return ""
    parts = []
    fields_first = sorted(page.same_for_all.items(), key=lambda item: item[0] not in _SAME_LABELS)
    for name, value in fields_first:
        label = _SAME_LABELS.get(name, name)
        text = label if value is True else f"{label} {present.text_value(value, compact=True)}"
        parts.append(f'<span class="same-item" data-column="{e(name)}">{e(text)}</span>')
    noun = "both runs" if page.total == 2 else f"all {page.total:,} runs"
    return (
        f'<div class="same-for-all" id="same-for-all" title="the same for {e(noun)} that match: '
        f'these columns are left out of the table">same for all: {", ".join(parts)}</div>'
    )


def runs_page(
    state: HermesApp,
    view: Mapping[str, Any],
    page: present.RunsPage | None,
    error: str | None,
    tags: Sequence[Sequence[str]] | None = None,
    *,
    fallback: bool = False,
) -> str:
    """The Runs page: the filter box, the count, the pager, the column picker and the table;
    on a writable server, the curation bar acting on the runs ticked.

    An ``error`` is shown above the table, which stays: with ``fallback`` ``page`` is
    not the view asked for but every run (newest first, default columns), and a note
    says so."""
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
    if page is not None and fallback:
        body.append(
            '<p class="hint" id="fallback-note">Because of the error above, the table shows '
            "every run, newest first, in the default columns.</p>"
        )
        state_fields = {"where": "", "sort": "", "columns": None, "per_page": state_fields["per_page"]}
        where = ""
    if page is not None:
        body.append(_runs_pager(page, state_fields))
        body.append(_column_picker(page, state_fields))
        if state.writable:
            body.append(curation_bar(archive=True))
        chosen_columns = state_fields["columns"]
        compare_all = "/compare" + query_string(
            {"where": where, "sort": state_fields["sort"], "columns": chosen_columns}
        )
        kept_columns = (
            f'<input type="hidden" name="columns" value="{e(",".join(chosen_columns))}">'
            if chosen_columns
            else ""
        )
        body.append(
            f'<form method="get" action="/compare" id="select-form">{kept_columns}'
            '<div class="bar"><button type="submit" id="compare-selected">Compare selected</button>'
            f' <a href="{e(compare_all)}" id="compare-all">compare all matching runs</a></div>'
            + same_line(page)
            + runs_table(page, state_fields, sort_links=True, select=True, tags=tags, fold_same=True)
            + "</form>"
        )
        body.append(_runs_pager(page, state_fields))
    return layout(state, "Runs", "Runs", "\n".join(body))


def curation_bar(*, archive: bool, run: str | None = None) -> str:
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
    if page.counted:
        count = f'<span class="count" id="count" data-total="{page.total}">{page.total:,} {noun}</span>'
        of_pages = f'<span id="page-count">{page.pages:,}</span>'
        to_last = link(page.pages, "last »", "last")
    else:
        # The rows came before the count: hermes.js fetches it (the last page: a page past the end).
        count_url = "/api/count" + query_string({"where": view.get("where") or None})
        count = f'<span class="count" id="count" data-count-url="{e(count_url)}">counting the runs…</span>'
        of_pages = f'<span id="page-count" data-per-page="{page.per_page}">…</span>'
        past_end = "/runs" + query_string({**view, "page": 2**40})
        to_last = f'<a href="{e(past_end)}" class="page-last">last »</a>'
    return (
        f'<div class="bar pager">{count} · showing {shown} · page {page.page:,} of {of_pages} '
        f"{link(1, '« first', 'first')} {link(page.page - 1, '‹ previous', 'previous')} "
        f"{link(page.page + 1, 'next ›', 'next')} {to_last} "
        f"{downloads('/api/runs', api_query)}</div>"
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
