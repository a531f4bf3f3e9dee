// hermes serve: draws the charts (plotly.js, served by hermes from the plotly package),
// selects runs for compare, runs the "refresh" action and, on a writable server, the
// curation writes (tag, untag, note, archive). Data comes from /api/... only.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

function showError(element, message) {
  const pre = document.createElement("pre");
  pre.className = "error";
  pre.textContent = message;
  element.replaceChildren(pre);
}

async function fetchJson(url) {
  const response = await fetch(url);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function curveTraces(data) {
  const traces = [];
  data.lines.forEach((line, i) => {
    const color = PALETTE[i % PALETTE.length];
    if (line.raw) {
      traces.push({x: line.x, y: line.raw, type: "scatter", mode: "lines", name: "scores",
                   line: {color: rgba(color, 0.35), width: 1}, legendgroup: line.label});
    }
    if (line.low && line.high) {
      traces.push({x: line.x.concat(line.x.slice().reverse()),
                   y: line.high.concat(line.low.slice().reverse()),
                   type: "scatter", mode: "lines", fill: "toself", fillcolor: rgba(color, 0.18),
                   line: {width: 0, color: rgba(color, 0)}, hoverinfo: "skip", showlegend: false,
                   legendgroup: line.label, connectgaps: false});
    }
    traces.push({x: line.x, y: line.y, type: "scatter", mode: "lines",
                 name: line.raw ? `mean of last ${data.window}` : line.label,
                 line: {color: color, width: 2}, legendgroup: line.label});
  });
  return traces;
}

async function drawCurves(element) {
  element.textContent = "loading…";
  try {
    const data = await fetchJson(element.dataset.url);
    element.textContent = "";
    const notes = [];
    if (data.truncated) notes.push(`the first ${data.runs} of ${data.matched} runs`);
    if (data.skipped) notes.push(`${data.skipped} run(s) without scores not drawn`);
    Plotly.newPlot(element, curveTraces(data), {
      margin: {l: 60, r: 20, t: 30, b: 45},
      title: {text: notes.join("; "), font: {size: 12}},
      xaxis: {title: {text: "episode"}},
      yaxis: {title: {text: `score (mean of last ${data.window})`}},
      hovermode: "x unified", legend: {orientation: "v"},
    }, {responsive: true, displaylogo: false});
    element.dataset.drawn = String(data.lines.length);
    if (element.dataset.summary !== undefined) summaryTable(element, data);
  } catch (error) {
    showError(element, error.message);
  }
}

function lastNumber(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return i;
  return -1;
}

// Below a compare chart: one row per line, best final value first ("which settings win").
function summaryTable(element, data) {
  const rows = data.lines.map((line) => {
    const last = lastNumber(line.y);
    let best = -1;
    line.y.forEach((y, i) => { if (y !== null && (best < 0 || y > line.y[best])) best = i; });
    return {label: line.label, n: line.n, episodes: last >= 0 ? line.x[last] + 1 : 0,
            final: last >= 0 ? line.y[last] : null, best: best >= 0 ? line.y[best] : null,
            at: best >= 0 ? line.x[best] : null};
  }).sort((a, b) => (b.final ?? -Infinity) - (a.final ?? -Infinity));
  const table = document.createElement("table");
  table.className = "hermes-table";
  table.id = "compare-summary";
  const head = table.createTHead().insertRow();
  for (const name of ["line", "runs", "episodes", `final mean (last ${data.window})`,
                      "best mean", "at episode"]) {
    head.appendChild(document.createElement("th")).textContent = name;
  }
  const body = table.createTBody();
  const format = (value) => value === null ? "" : Number(value.toPrecision(6)).toString();
  for (const row of rows) {
    const tr = body.insertRow();
    const cells = [row.label, row.n, row.episodes, format(row.final), format(row.best), row.at ?? ""];
    cells.forEach((value, i) => {
      const td = tr.insertCell();
      td.textContent = String(value);
      if (i > 0) td.className = "num";
    });
  }
  document.getElementById(element.dataset.summary)?.replaceChildren(table);
}

async function plotResult(button) {
  const target = document.getElementById(button.dataset.target);
  target.hidden = false;
  target.textContent = "loading…";
  try {
    const data = await fetchJson(button.dataset.url);
    const names = Object.keys(data.series);
    if (!names.length) {
      target.textContent = `${data.file} holds no scalar series`;
      return;
    }
    target.textContent = "";
    const traces = names.map((name, i) => ({x: data.series[name].x, y: data.series[name].y,
      type: "scatter", mode: "lines", name: name, line: {color: PALETTE[i % PALETTE.length]}}));
    Plotly.newPlot(target, traces, {margin: {l: 60, r: 20, t: 30, b: 45},
      title: {text: data.file, font: {size: 12}}, xaxis: {title: {text: "step"}}},
      {responsive: true, displaylogo: false});
  } catch (error) {
    showError(target, error.message);
  }
}

function hermesRedraw(form) {
  const chart = document.getElementById("curve-chart");
  const url = new URL(chart.dataset.url, window.location.href);
  url.searchParams.set("window", form.window.value);
  chart.dataset.url = url.pathname + url.search;
  drawCurves(chart);
  return false;
}
window.hermesRedraw = hermesRedraw;

async function pollStatus(label) {
  const status = await fetchJson("/api/status");
  if (status.running) {
    label.textContent = "syncing…";
    setTimeout(() => pollStatus(label), 1000);
  } else if (status.error) {
    label.textContent = `sync failed: ${status.error}`;
  } else if (status.report) {
    const r = status.report;
    const changed = r.added + r.updated + r.removed;
    const rendered = Number(document.body.dataset.rendered || 0);
    const time = new Date(status.finished_at * 1000).toLocaleTimeString();
    if (changed && status.finished_at > rendered) {
      label.innerHTML = `synced ${time}: +${r.added} ~${r.updated} −${r.removed} runs ` +
                        `<a href="">reload</a>`;
    } else {
      label.textContent = `synced ${time}`;
    }
    if (r.problems) label.textContent += ` · ${r.problems} unreadable run(s)`;
  }
}

// ---------------------------------------------------------------- curation (--writable)

const MESSAGE_KEY = "hermes-curation-message";

function tickedRuns(bar) {
  if (bar.dataset.run !== undefined) return [bar.dataset.run];
  return Array.from(document.querySelectorAll("input.select-run:checked"), (box) => box.value);
}

function showTicked(bar) {
  const label = document.getElementById("selected-count");
  if (!label) return;
  const n = tickedRuns(bar).length;
  label.textContent = n ? `${n} ticked` : "none ticked";
}

function sayStatus(text, isError) {
  const status = document.getElementById("curation-status");
  if (!status) return;
  status.textContent = text;
  status.className = isError ? "error" : "done";
}

function summary(what, answer) {
  const done = answer.runs.length;
  const parts = [];
  if (what === "tags") {
    const changed = answer.runs.filter((run) => run.changed).length;
    parts.push(`${changed} of ${done} run(s) changed`);
  } else {
    parts.push(`${done} run(s) ${what === "archive" ? "archived" : "noted"}`);
  }
  for (const refused of answer.refused) parts.push(`refused ${refused.identifier}: ${refused.reason}`);
  return parts.join("; ");
}

// POST a write with the page's token; on success reload the page (the index changed),
// with what was done shown after the reload; on failure say why and change nothing.
async function curate(bar, what, body) {
  const token = document.querySelector('meta[name="hermes-token"]')?.content;
  const runs = tickedRuns(bar);
  if (!runs.length) {
    sayStatus("tick the runs first", true);
    return;
  }
  sayStatus("working…", false);
  try {
    const response = await fetch(`/api/runs/${what}`, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Hermes-Token": token || ""},
      credentials: "same-origin",
      body: JSON.stringify({runs: runs, ...body}),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    sessionStorage.setItem(MESSAGE_KEY, summary(what, answer));
    window.location.reload();
  } catch (error) {
    sayStatus(error.message, true);
  }
}

function setUpCuration() {
  const bar = document.getElementById("curation");
  if (!bar) return;
  const message = sessionStorage.getItem(MESSAGE_KEY);
  if (message !== null) {
    sessionStorage.removeItem(MESSAGE_KEY);
    sayStatus(message, message.includes("refused"));
  }
  const tagInput = document.getElementById("tag-input");
  const noteInput = document.getElementById("note-input");
  const tagWith = (key) => () => {
    if (!tagInput.value.trim()) { sayStatus("type a tag first", true); return; }
    curate(bar, "tags", {[key]: [tagInput.value]});
  };
  document.getElementById("add-tag").addEventListener("click", tagWith("add"));
  document.getElementById("remove-tag").addEventListener("click", tagWith("remove"));
  tagInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); tagWith("add")(); }
  });
  const addNote = () => {
    if (!noteInput.value.trim()) { sayStatus("type a note first", true); return; }
    curate(bar, "notes", {text: noteInput.value});
  };
  document.getElementById("add-note").addEventListener("click", addNote);
  noteInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); addNote(); }
  });
  const archive = document.getElementById("archive-selected");
  const dialog = document.getElementById("archive-dialog");
  if (archive && dialog) {
    archive.addEventListener("click", () => {
      const n = tickedRuns(bar).length;
      if (!n) { sayStatus("tick the runs first", true); return; }
      document.getElementById("archive-question").textContent =
        `Move ${n} run(s) to ROOT/.archive/? They leave the catalogue; ` +
        "hermes unarchive brings them back.";
      dialog.showModal();
    });
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "archive") curate(bar, "archive", {});
    });
  }
  // On the document: after the box's own handlers (select-all ticks every box first).
  document.addEventListener("change", (event) => {
    if (event.target.matches("input.select-run, #select-all")) showTicked(bar);
  });
  showTicked(bar);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCuration();
  document.querySelectorAll(".chart[data-url]").forEach(drawCurves);
  document.querySelectorAll("button.plot-result").forEach((button) =>
    button.addEventListener("click", () => plotResult(button)));
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => document.querySelectorAll("input.select-run")
      .forEach((box) => { box.checked = all.checked; }));
  }
  const label = document.getElementById("sync-status");
  const refresh = document.getElementById("refresh");
  if (refresh && label) {
    refresh.addEventListener("click", async () => {
      await fetch("/api/refresh", {method: "POST"});
      pollStatus(label);
    });
    pollStatus(label);
  }
});
