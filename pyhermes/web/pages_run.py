"""The HTML of the Run page of ``hermes serve``: a status badge, the end of ``stderr.log`` of a
crashed run, the run's tables, its learning curve, its files as downloads and a paged log viewer
(``run.js`` pages the log and keeps the smoothing window in the URL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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

__all__ = ["run_page", "RunView", "STATUS_WORDS"]

#: What the badge of each status says when hovered (its reason follows).
STATUS_WORDS = {
    "finished": "the run recorded its end",
    "unfinished": "still being written, or stopped moments ago",
    "crashed": "stopped without recording its end, or ended in a traceback",
}


@dataclass
class RunView:
    """What the Run page shows besides the run's details: the smoothing ``window``, the
    ``health`` (:func:`pyhermes.present.details.run_health`), the ``files`` (its
    ``run_downloads``), the ``logs`` that can be paged, the ``log`` shown first with its
    last page ``log_window`` (the answer of ``/api/run/<path>/log/<name>``) and the lines
    of a page, ``log_page``."""

    window: int = 100
    health: Mapping[str, Any] = field(default_factory=dict)
    files: Sequence[Mapping[str, Any]] = ()
    logs: Sequence[str] = ()
    log: str = ""
    log_window: Mapping[str, Any] | None = None
    log_page: int = 200


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


def _badge(health: Mapping[str, Any]) -> str:
    status = str(health.get("status", "unfinished"))
    why = f"{STATUS_WORDS.get(status, '')}: {health.get('status_reason', '')}"
    return (
        f'<span class="badge badge-{e(status)}" id="run-status" data-status="{e(status)}" '
        f'title="{e(why)}">{e(status)}</span>'
    )


def _crash_card(api: str, health: Mapping[str, Any]) -> str:
    """The end of ``stderr.log`` of a crashed run, right under the title."""
    if health.get("status") != "crashed":
        return ""
    lines = health.get("crash_lines")
    text = "\n".join(lines) if lines else "(stderr.log is empty or missing)"
    return (
        '<section class="card wide crash" id="crash-card">'
        f'<h3>Crashed: {e(str(health.get("status_reason", "")))}</h3>'
        f'<pre class="log" id="stderr-tail">{e(text)}</pre>'
        '<p class="hint">the end of stderr.log · '
        f'<a href="#logs" class="show-log" data-log="stderr.log">page through stderr.log</a> · '
        f'<a href="{e(api + "/file/stderr.log")}" download>download it</a></p></section>'
    )


def _curve_card(identifier: str, window: int, has_scores: bool) -> str:
    """The learning curve (drawn by charts.js), or a quiet note when there are no scores yet."""
    if not has_scores:
        return (
            '<section class="card wide" id="curve-card"><h3>Learning curve</h3>'
            '<p class="hint" id="no-scores">no scores yet</p></section>'
        )
    curve_url = "/api/curves" + query_string({"runs": identifier, "raw": 1, "window": window})
    return f"""<section class="card wide" id="curve-card"><h3>Learning curve</h3>
<form class="bar" id="window-form" method="get">
<label>smoothing window <input type="number" name="window" min="1" value="{window}" id="window"></label>
<button type="submit">redraw</button>
<span class="hint">scores, their trailing mean and ± one standard deviation over the window</span>
</form>
<div class="chart" id="curve-chart" data-url="{e(curve_url)}"></div></section>"""


def _files_card(api: str, files: Sequence[Mapping[str, Any]]) -> str:
    """The files of the run: downloads with their sizes; logs open in the log viewer."""
    rows = []
    for item in files:
        name = str(item["name"])
        url = f"{api}/file/{quote(name, safe='')}"
        if item["download"]:
            link = f'<a href="{e(url)}" class="file-link" download="{e(name)}">{e(name)}</a>'
        else:
            link = e(name + ("/" if item["kind"] == "folder" else ""))
        size = item["human"] if item["download"] else {"folder": "folder", "link": "link out of the run"}.get(
            str(item["kind"]), "not a file")
        show = (f' <a href="#logs" class="show-log" data-log="{e(name)}">view</a>' if item["log"] else "")
        exact = f' title="{item["size"]:,} bytes"' if item["size"] is not None else ""
        rows.append(f'<tr><td>{link}{show}</td><td class="num"{exact}>{e(size)}</td></tr>')
    table = (
        '<table class="hermes-table" id="files-table"><thead><tr><th>file</th><th>size</th></tr></thead>'
        f'<tbody>{"".join(rows) or "<tr><td colspan=2>(none)</td></tr>"}</tbody></table>'
    )
    return (
        f'<section class="card" id="table-files"><h3>Files</h3>{table}'
        f"<p>{downloads(api, {'table': 'files'})}</p></section>"
    )


def _log_card(api: str, view: RunView) -> str:
    """The log viewer: one log at a time, a page of lines, pager buttons and "follow tail"."""
    if not view.logs:
        return ('<section class="card wide" id="logs"><h3>Logs</h3>'
                '<p class="hint" id="no-logs">no log files</p></section>')
    options = "".join(
        f'<option value="{e(name)}"{" selected" if name == view.log else ""}>{e(name)}</option>'
        for name in view.logs
    )
    window = view.log_window or {"start": 0, "end": 0, "total": 0, "lines": [], "human_size": ""}
    lines = list(window["lines"])
    text = "\n".join(lines) if lines else "(empty)"
    shown = (f'lines {window["start"] + 1:,}–{window["end"]:,} of {window["total"]:,} · {window["human_size"]}'
             if window["total"] else "no lines")
    return f"""<section class="card wide" id="logs"><h3>Logs</h3>
<div class="bar" id="log-bar"><select id="log-name" aria-label="log file">{options}</select>
<button type="button" id="log-first">« first</button>
<button type="button" id="log-previous">‹ previous</button>
<button type="button" id="log-next">next ›</button>
<button type="button" id="log-last">last »</button>
<label><input type="checkbox" id="log-follow"> follow tail</label>
<span class="hint" id="log-position">{e(shown)}</span>
<a id="log-download" href="{e(api + '/file/' + quote(view.log, safe=''))}" download>download</a></div>
<pre class="log log-view" id="log-view" data-api="{e(api)}" data-log="{e(view.log)}"
 data-start="{window['start']}" data-end="{window['end']}" data-total="{window['total']}"
 data-count="{view.log_page}">{e(text)}</pre></section>"""


def run_page(
    state: HermesApp,
    path: str,
    details: Mapping[str, Any],
    tags: Sequence[str] = (),
    notes: Sequence[Any] = (),
    view: RunView | None = None,
) -> str:
    """The Run page: a status badge, the end of ``stderr.log`` when the run crashed, everything
    ``hermes show`` prints, its tags and notes (newest first, as given), the learning curve
    (a "no scores yet" note without scores), files as downloads, result series, the log viewer."""
    view = view or RunView()
    identifier = str(details["identifier"])
    api = "/api/run/" + quote(path, safe="/")
    sections = []
    for table, title in (
        ("fields", "Run"),
        ("scores", "Score summary"),
        ("args", "Arguments (exec_arguments)"),
        ("info", "Info (hermes.info)"),
    ):
        columns, rows = run_table(details, table)
        sections.append(
            f'<section class="card" id="table-{table}"><h3>{e(title)}</h3>'
            f"{present.html_table(columns, rows)}"
            f"<p>{downloads(api, {'table': table})}</p></section>"
        )
    sections.append(_files_card(api, view.files))
    pth = "".join(f"<li>{e(name)}</li>" for name in details["pth_files"]) or "<li>(none)</li>"
    results = "".join(
        f'<li>{e(name)} <button type="button" class="plot-result" '
        f'data-url="{e(api + "/result/" + quote(name))}" data-target="result-chart">'
        "plot scalar series</button></li>"
        for name in details["result_files"]
    ) or "<li>(none)</li>"
    has_scores = bool(details["scores"].get("count"))
    body = f"""<link rel="stylesheet" href="/static/run.css">
<div class="title-line"><h1 id="run-title">{e(identifier)}</h1>{_badge(view.health)}</div>
<p class="path">{e(path)} · <a href="{e(api)}">JSON</a> ·
<a href="{e('/compare' + query_string({'runs': identifier}))}">open in compare</a></p>
{_crash_card(api, view.health)}
{_curation_card(state, identifier, tags, notes)}
{_curve_card(identifier, view.window, has_scores)}
<div class="cards">{"".join(sections)}</div>
{_log_card(api, view)}
<section class="card wide"><h3>State dicts (.pth)</h3><ul id="pth-files">{pth}</ul>
<h3>Results (.result)</h3><ul id="result-files">{results}</ul>
<div class="chart" id="result-chart" hidden></div></section>
<script src="/static/run.js" defer></script>
"""
    return layout(state, identifier, "", body, charts=True)
