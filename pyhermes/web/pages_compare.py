"""The HTML of the Compare page of ``hermes serve``."""

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
                f"<p>{downloads('/api/curves', view, 'curves')}</p></section>"
            )
            more = (
                f" (the first {page.per_page} shown)" if page.total > page.per_page else ""
            )
            body.append(
                f'<h3><span id="count" data-total="{page.total}">{page.total:,}</span> runs'
                f"{more} {downloads('/api/runs', {**view, 'all': 1}, 'table')}</h3>"
            )
            body.append(runs_table(page, view, sort_links=False, select=False, tags=tags))
    return layout(state, "Compare", "Compare", "\n".join(body), charts=True)
