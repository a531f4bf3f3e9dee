// hermes serve: draws the charts of the Run and Compare pages with plotly.js (served by
// hermes from the plotly package). Uses PALETTE, rgba, showError and fetchJson of hermes.js,
// which is loaded first. Data comes from /api/... only.
"use strict";

// Above this many lines the chart has no legend: the table under it names them, with swatches.
const MAX_LEGEND = 20;
// The colours of the lines: the ten of PALETTE, then their light companions; then again.
const LINE_COLOURS = PALETTE.concat(["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
                                     "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]);

// The lines of a chart in one order, used by the legend, the summary, the args table and the
// runs table alike: best final smoothed value first (a line without one last), ties as sent.
function lineOrder(data) {
  const finalOf = (line) => line.final ?? (() => {
    const last = lastNumber(line.y);
    return last >= 0 ? line.y[last] : null;
  })();
  const finals = data.lines.map((line) => finalOf(line));
  return data.lines.map((_, i) => i).sort((a, b) =>
    ((finals[b] ?? -Infinity) - (finals[a] ?? -Infinity)) || a - b);
}

function lineName(line) {
  return line.name || line.label;
}

function curveTraces(lines, window) {
  const traces = [];
  lines.forEach((line, i) => {
    const color = LINE_COLOURS[i % LINE_COLOURS.length];
    const name = lineName(line);
    if (line.raw) {
      traces.push({x: line.x, y: line.raw, type: "scatter", mode: "lines", name: "scores",
                   line: {color: rgba(color, 0.35), width: 1}, legendgroup: name});
    }
    if (line.low && line.high) {
      traces.push({x: line.x.concat(line.x.slice().reverse()),
                   y: line.high.concat(line.low.slice().reverse()),
                   type: "scatter", mode: "lines", fill: "toself", fillcolor: rgba(color, 0.18),
                   line: {width: 0, color: rgba(color, 0)}, hoverinfo: "skip", showlegend: false,
                   legendgroup: name, connectgaps: false});
    }
    traces.push({x: line.x, y: line.y, type: "scatter", mode: "lines",
                 name: line.raw ? `mean of last ${window}` : name,
                 line: {color: color, width: 2}, legendgroup: name});
  });
  return traces;
}

function chartNotes(data) {
  const notes = [];
  if (data.truncated) {
    notes.push(`${data.runs.toLocaleString()} of ${data.matched.toLocaleString()} matching runs drawn, ` +
               "a random sample (the same for this query): group them to see every run");
  }
  if (data.skipped) notes.push(`${data.skipped} run(s) without scores not drawn`);
  if (data.unreadable) notes.push(`${data.unreadable} of them with an unreadable scores file`);
  if (data.bands_hidden) notes.push(`no bands on ${data.lines.length} lines`);
  return notes;
}

async function drawCurves(element) {
  element.textContent = "loading…";
  try {
    const data = await fetchJson(element.dataset.url);
    element.textContent = "";
    const order = lineOrder(data);
    const lines = order.map((i) => data.lines[i]);
    const notes = chartNotes(data);
    const note = element.dataset.note ? document.getElementById(element.dataset.note) : null;
    if (note) {
      note.textContent = notes.join("; ");
      note.hidden = !notes.length;
    }
    // Many lines: the table under the chart is their legend. Long names: the legend goes
    // under the plot, which keeps the chart's width.
    const longest = Math.max(0, ...lines.map((line) => lineName(line).length));
    const below = lines.length <= MAX_LEGEND && longest > 40;
    const layout = {
      margin: {l: 60, r: 20, t: 30, b: 45},
      title: {text: notes.join("; "), font: {size: 12}},
      xaxis: {title: {text: "episode"}},
      yaxis: {title: {text: `score (mean of last ${data.window})`}},
      hovermode: lines.length <= 12 ? "x unified" : "closest",
      hoverlabel: {namelength: -1},
      showlegend: lines.length <= MAX_LEGEND,
      legend: below ? {orientation: "h", x: 0, y: -0.15, yanchor: "top"} : {orientation: "v"},
    };
    if (below) {
      layout.height = 420 + 22 * lines.length;
      element.style.height = `${layout.height}px`;
    }
    Plotly.newPlot(element, curveTraces(lines, data.window), layout,
                   {responsive: true, displaylogo: false});
    element.dataset.drawn = String(lines.length);
    if (element.dataset.summary !== undefined) summaryTable(element, data, lines);
    if (element.dataset.args !== undefined) argsTable(element, data, lines);
    if (element.dataset.runs !== undefined) orderRuns(element, data, order);
  } catch (error) {
    showError(element, error.message);
  }
}

function lastNumber(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return i;
  return -1;
}

function swatch(color) {
  const span = document.createElement("span");
  span.className = "swatch";
  span.style.background = color;
  return span;
}

function nameCell(tr, line, i) {
  const td = tr.insertCell();
  td.appendChild(swatch(LINE_COLOURS[i % LINE_COLOURS.length]));
  td.appendChild(document.createTextNode(lineName(line)));
  td.className = "line-name";
  if (line.identifier && lineName(line) !== line.identifier) td.title = line.identifier;
  return td;
}

// Below a compare chart: one row per line, in the chart's order, with the line's colour.
function summaryTable(element, data, lines) {
  const table = document.createElement("table");
  table.className = "hermes-table";
  table.id = "compare-summary";
  const head = table.createTHead().insertRow();
  for (const name of ["line", "runs", "episodes", `final mean (last ${data.window})`,
                      "best mean", "at episode"]) {
    head.appendChild(document.createElement("th")).textContent = name;
  }
  const body = table.createTBody();
  const finals = lines.map((line) => {
    const last = lastNumber(line.y);
    return line.final ?? (last >= 0 ? line.y[last] : null);
  });
  const bests = lines.map((line) => line.best ?? null);
  // One number of decimals for the two score columns: five significant digits of the largest.
  const largest = Math.max(0, ...finals.concat(bests).filter(Number.isFinite).map(Math.abs));
  const decimals = largest > 0 ? Math.min(6, Math.max(0, 4 - Math.floor(Math.log10(largest)))) : 2;
  const format = (value) => value === null || value === undefined ? "" :
    Number.isFinite(value) ? value.toFixed(decimals) : String(value);
  lines.forEach((line, i) => {
    const tr = body.insertRow();
    nameCell(tr, line, i);
    const last = lastNumber(line.y);
    const cells = [line.n, line.episodes ?? (last >= 0 ? line.x[last] + 1 : 0),
                   format(finals[i]), format(bests[i]), line.best_at ?? ""];
    for (const value of cells) {
      const td = tr.insertCell();
      td.textContent = String(value);
      td.className = "num";
    }
  });
  document.getElementById(element.dataset.summary)?.replaceChildren(table);
}

function keyOrder(a, b) {
  const optionA = a.startsWith("-") ? 0 : 1;
  const optionB = b.startsWith("-") ? 0 : 1;
  return optionA - optionB || a.replace(/^-+/, "").localeCompare(b.replace(/^-+/, "")) || a.localeCompare(b);
}

// The args of the lines: a row per line, a column per arg; the args in which the lines
// differ first and highlighted, those the same for every line also said in one line above.
function argsTable(element, data, lines) {
  const target = document.getElementById(element.dataset.args);
  if (!target) return;
  const differing = data.differing || [];
  const all = new Set();
  for (const line of lines) for (const key of Object.keys(line.args || {})) all.add(key);
  const same = [...all].filter((key) => !differing.includes(key)).sort(keyOrder);
  const keys = differing.concat(same);
  const text = (value) => value === true ? "✓" : value === null ? "varies" : value === undefined ? "" : String(value);
  const parts = [];
  const sameLine = document.createElement("p");
  sameLine.className = "compare-same";
  sameLine.id = "compare-same";
  if (same.length) {
    sameLine.append("same for every line: ");
    same.forEach((key, i) => {
      const code = document.createElement("code");
      const value = lines[0].args[key];
      code.textContent = value === true ? key : `${key} ${text(value)}`;
      if (i) sameLine.append(", ");
      sameLine.appendChild(code);
    });
    parts.push(sameLine);
  }
  const table = document.createElement("table");
  table.className = "hermes-table";
  table.id = "compare-args-table";
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th")).textContent = "line";
  for (const key of keys) {
    const th = head.appendChild(document.createElement("th"));
    th.textContent = key;
    if (differing.includes(key)) th.className = "differs";
  }
  const body = table.createTBody();
  lines.forEach((line, i) => {
    const tr = body.insertRow();
    nameCell(tr, line, i);
    for (const key of keys) {
      const td = tr.insertCell();
      const value = (line.args || {})[key];
      td.textContent = text(value);
      const classes = [];
      if (differing.includes(key)) classes.push("differs");
      if (value === null) classes.push("varies");
      td.className = classes.join(" ");
    }
  });
  parts.push(table);
  target.replaceChildren(...parts);
}

// The runs table in the chart's order: the runs of the first line first, each row marked with
// its line's colour; rows of runs not drawn (not in a line) keep their order, last.
function orderRuns(element, data, order) {
  const table = document.getElementById(element.dataset.runs);
  if (!table || !data.members) return;
  const rank = new Map(order.map((lineIndex, position) => [lineIndex, position]));
  const body = table.tBodies[0];
  if (!body) return;
  const rows = Array.from(body.rows).map((row, i) => {
    const link = row.querySelector("a.run-link");
    const lineIndex = link ? data.members[link.textContent] : undefined;
    const position = lineIndex === undefined ? Infinity : rank.get(lineIndex);
    return {row, i, position, link};
  });
  rows.sort((a, b) => (a.position - b.position) || (a.i - b.i));
  for (const {row, position, link} of rows) {
    row.querySelector(".swatch")?.remove();
    if (position !== Infinity && link) {
      link.parentElement.insertBefore(swatch(LINE_COLOURS[position % LINE_COLOURS.length]), link);
      row.dataset.line = String(position);
    }
    body.appendChild(row);
  }
  table.dataset.ordered = "1";
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
      type: "scatter", mode: "lines", name: name, line: {color: LINE_COLOURS[i % LINE_COLOURS.length]}}));
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
  document.getElementById("ungrouped")?.addEventListener("click", () => {
    const form = document.getElementById("compare-form");
    form.group_by.value = "";
    form.submit();
  });
  document.querySelectorAll("button.plot-result").forEach((button) =>
    button.addEventListener("click", () => plotResult(button)));
});
