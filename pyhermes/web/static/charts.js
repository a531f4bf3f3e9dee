// hermes serve: draws the charts of the Run and Compare pages with plotly.js (served by
// hermes from the plotly package). Uses PALETTE, rgba, showError and fetchJson of hermes.js,
// which is loaded first. Data comes from /api/... only.
"use strict";

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

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".chart[data-url]").forEach(drawCurves);
  document.querySelectorAll("button.plot-result").forEach((button) =>
    button.addEventListener("click", () => plotResult(button)));
});
