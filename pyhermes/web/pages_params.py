"""The HTML of the Params page of ``hermes serve``: the hyperparameter view.

The page holds its controls (filter, score summary, the arg of the scatter), the
counts and notes, two chart elements, and the data of the charts as JSON
(``<script type="application/json" id="params-data">``, the answer of ``/api/params``
for the same URL), which ``params.js`` draws with plotly.js.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyhermes import present
from pyhermes.web.pages import e, layout, query_string

if TYPE_CHECKING:
    from pyhermes.web.state import HermesApp

__all__ = ["params_page", "embedded_json"]


def embedded_json(data: Any) -> str:
    """Return ``data`` as JSON text safe inside a ``<script>`` element (``<``, ``>``, ``&``
    escaped as ``\\u003c``...; non-finite numbers as ``null``)."""
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(present.json_value(data), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _options(values: list[str], chosen: str | None) -> str:
    return "".join(
        f'<option value="{e(value)}"{" selected" if value == chosen else ""}>{e(value)}</option>'
        for value in values
    )


def _controls(view: Mapping[str, Any], data: Mapping[str, Any] | None) -> str:
    from pyhermes.present.hparams import HPARAM_SUMMARIES

    summaries = list(data["summaries"]) if data else list(HPARAM_SUMMARIES)
    summary = data["summary"] if data else view["summary"]
    varying = list(data["varying"]) if data else []
    chosen_x = data["x"] if data else view["x"]
    x_control = (
        f'<label>scatter of <select name="x" id="x-arg">{_options(varying, chosen_x)}</select></label>'
        if varying and data and data["x"] is not None
        else ""
    )
    return (
        '<form method="get" action="/params" id="params-form" class="bar">'
        f'<input type="text" name="where" id="where" value="{e(view["where"])}" '
        'placeholder="every run; e.g. --doubledqn and -gamma = 0.99" spellcheck="false">'
        f'<label>score <select name="summary" id="summary">{_options(summaries, summary)}</select></label>'
        f"{x_control}"
        '<button type="submit" id="apply">Show</button></form>'
        '<p class="hint">Same filter expressions as the Runs page. One line per run, coloured by '
        "the score; drag along an axis to keep a range of it (drag the axis titles to reorder); "
        "a click on a point of the scatter opens its run.</p>"
    )


def _counts(view: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    where = view["where"]
    runs_url = "/runs" + query_string({"where": where})
    compare_url = "/compare" + query_string({"where": where, "group_by": data["x"] or ""})
    noun = "run matches" if data["matched"] == 1 else "runs match"
    parts = [
        f'<span id="count" data-total="{data["matched"]}">{data["matched"]:,} {noun}</span>',
        f'<span id="scored" data-scored="{data["scored"]}">{data["scored"]:,} with a {e(data["summary"])}</span>',
    ]
    if data["message"] is None:
        parts.append(f'<span id="shown" data-shown="{data["shown"]}">{data["shown"]:,} drawn</span>')
    links = f'<a href="{e(runs_url)}" id="params-runs">the runs</a>'
    if data["matched"] and data["x"] is not None:
        links += f' · <a href="{e(compare_url)}" id="params-compare">compare, grouped by {e(data["x"])}</a>'
    return f'<div class="bar">{" · ".join(parts)} · {links}</div>'


def params_page(
    state: HermesApp, view: Mapping[str, Any], data: Mapping[str, Any] | None, error: str | None
) -> str:
    """The Params page: the controls, then the error, or the counts, notes and charts of ``data``
    (the answer of :func:`pyhermes.present.hparams.hparams_view`)."""
    body = ["<h1>Params</h1>", _controls(view, data)]
    if error is not None:
        body.append(f'<pre class="error" id="error">{e(error)}</pre>')
    if data is not None:
        body.append(_counts(view, data))
        if data["constant"]:
            same = ", ".join(data["constant"])
            body.append(f'<p class="hint" id="constant">same for all: {e(same)}</p>')
        if data["notes"]:
            notes = "".join(f"<li>{e(note)}</li>" for note in data["notes"])
            body.append(f'<ul class="hint" id="params-notes">{notes}</ul>')
        if data["message"] is not None:
            body.append(f'<p id="params-message">{e(data["message"])}</p>')
        else:
            body.append(
                '<section class="card wide"><div class="chart" id="parcoords"></div>'
                '<p class="hint" id="brushed"></p></section>'
                '<section class="card wide"><div class="chart" id="scatter"></div></section>'
                f'<script type="application/json" id="params-data">{embedded_json(data)}</script>'
            )
    body.append('<script src="/static/params.js" defer></script>')
    return layout(state, "Params", "Params", "\n".join(body), charts=True)
