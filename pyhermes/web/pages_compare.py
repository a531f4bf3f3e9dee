"""The HTML of the Compare page of ``hermes serve``.

The page holds the form (the runs or the filter, grouping, window, band), the chart
(drawn by ``charts.js`` from ``/api/curves``), the summary of its lines, the table
of their args and the table of the runs. ``charts.js`` puts the lines in one order,
best final mean first, and gives the legend, the summary, the args table and the
runs table that order and the lines' colours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pyhermes import present
from pyhermes.web.pages import (
    downloads,
    e,
    layout,
    query_string,
    runs_table,
)

if TYPE_CHECKING:
    from pyhermes.web.state import HermesApp

__all__ = ["compare_page"]


def _run_chips(identifiers: Sequence[str], keep: Mapping[str, Any]) -> str:
    """The compared runs as chips, each with a link that removes it from the ``runs=`` list."""
    chips = []
    for identifier in identifiers:
        others = [other for other in identifiers if other != identifier]
        target = "/compare" + query_string({**keep, "runs": others}) if others else "/compare"
        chips.append(
            f'<span class="run-chip" data-identifier="{e(identifier)}">{e(identifier)}'
            f'<a href="{e(target)}" class="remove-run" title="remove {e(identifier)} from the compare"'
            f' aria-label="remove {e(identifier)}">×</a></span>'
        )
    return '<div class="run-chips" id="run-chips">' + "".join(chips) + "</div>"


def compare_page(
    state: HermesApp,
    args: Mapping[str, Any],
    options: Mapping[str, Any],
    identifiers: Sequence[str] | None,
    page: present.RunsPage | None,
    error: str | None,
    tags: Sequence[Sequence[str]] | None = None,
    *,
    view: Mapping[str, Any] | None = None,
) -> str:
    """The Compare page: the runs or filter, grouping options, the overlaid curves, the
    summary and args of the lines, the table of the runs compared (``view``'s columns and sort)."""
    runs = list(identifiers or ())
    where = args.get("where", "")
    band = args.get("band", "std")
    columns = (view or {}).get("columns") or None
    sort = args.get("sort", "")
    state_fields = {
        "runs": runs,
        "where": "" if runs else where,
        "sort": sort,
        "columns": columns,
        "group_by": options["group_by"],
        "window": options["window"] if options["window"] != 100 else None,
        "band": band if band != "std" else None,
        "min_runs": options["min_runs"],
    }
    curves_query = {**state_fields, "columns": None, "sort": sort}
    band_options = "".join(
        f'<option value="{value}"{" selected" if value == band else ""}>{text}</option>'
        for value, text in (("std", "± std"), ("ci95", "95% interval"), ("none", "no band"))
    )
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{e(",".join(value) if isinstance(value, list) else str(value))}">'
        for name, value in (("sort", sort), ("columns", columns))
        if value
    )
    keep = {key: value for key, value in state_fields.items() if key != "runs"}
    if runs:
        selection = (
            f'<input type="hidden" name="runs" value="{e(",".join(runs))}">'
            f'<span class="hint" id="selected-runs">{len(runs)} runs selected</span>'
        )
        chips = _run_chips(runs, keep)
    else:
        selection = (
            f'<label>filter <input type="text" name="where" id="where" value="{e(where)}" '
            'placeholder="every run" spellcheck="false"></label>'
        )
        chips = ""
    body = [
        '<link rel="stylesheet" href="/static/compare.css">',
        "<h1>Compare</h1>",
        f'<form method="get" action="/compare" id="compare-form" class="bar">{selection}{hidden}'
        f'<label>group by <input type="text" name="group_by" id="group-by" '
        f'value="{e(options["group_by"])}" placeholder="one line per run" spellcheck="false" '
        'title="keys such as -lr,--doubledqn; * for one group of every run; empty for one line per run">'
        "</label>"
        '<button type="button" id="ungrouped" title="one line per run">ungrouped</button>'
        f'<label>window <input type="number" name="window" id="window" min="1" '
        f'value="{options["window"]}"></label>'
        f'<label>band <select name="band" id="band">{band_options}</select></label>'
        f'<button type="submit" id="draw">Draw</button></form>',
    ]
    if runs or page is not None:
        add_hidden = "".join(
            f'<input type="hidden" name="{name}" value="{e(",".join(value) if isinstance(value, list) else str(value))}">'
            for name, value in {**keep, "runs": runs, "where": None}.items()
            if value
        )
        body.append(
            chips
            + '<form method="get" action="/compare" id="add-form" class="bar">'
            + add_hidden
            + '<label>add runs <input type="text" name="add" id="add-runs" spellcheck="false" '
            'placeholder="identifiers or a filter, e.g. -lr < 0.01"></label>'
            '<button type="submit" id="add">Add</button></form>'
        )
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
            curves_url = "/api/curves" + query_string(curves_query)
            body.append(
                '<section class="card wide"><p class="note" id="compare-note" hidden></p>'
                '<div class="chart" id="compare-chart" '
                f'data-url="{e(curves_url)}" data-summary="compare-lines" data-args="compare-args" '
                'data-runs="runs" data-note="compare-note"></div>'
                '<div id="compare-lines"></div>'
                '<h3>Args of the lines <span class="hint">(differing ones highlighted)</span></h3>'
                '<div id="compare-args"></div>'
                f"<p>{downloads('/api/curves', curves_query, 'curves (every episode)')}</p></section>"
            )
            more = (
                f" (the first {page.per_page} shown)" if page.total > page.per_page else ""
            )
            body.append(
                f'<h3><span id="count" data-total="{page.total}">{page.total:,}</span> runs'
                f"{more} {downloads('/api/runs', {**state_fields, 'all': 1}, 'table')}</h3>"
            )
            body.append(runs_table(page, state_fields, sort_links=False, select=False, tags=tags))
    return layout(state, "Compare", "Compare", "\n".join(body), charts=True)
