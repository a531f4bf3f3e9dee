"""The HTML of the Run page of ``hermes serve``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pyhermes import present
from pyhermes.web.data import run_table
from pyhermes.web.pages import (
    curation_bar,
    downloads,
    e,
    layout,
    query_string,
    tag_chips,
)

if TYPE_CHECKING:
    from pyhermes.web.state import HermesApp

__all__ = ["run_page"]


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
    bar = curation_bar(archive=False, run=identifier) if state.writable else ""
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
            f"<p>{downloads(api, {'table': table})}</p></section>"
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
