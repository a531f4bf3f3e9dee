// hermes serve: draws the Params page (the hyperparameter view) with plotly.js: a
// parallel-coordinates plot of the args that vary and the score, and a scatter of one arg
// against the score. The data is the page's own JSON (the answer of /api/params for its URL).
"use strict";

const SCALE = "Viridis";

function plainText(text) {
  // plotly reads a few HTML tags in labels: show the text as typed.
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function runUrl(path) {
  return "/run/" + path.split("/").map(encodeURIComponent).join("/");
}

function drawParcoords(element, data) {
  const dimensions = data.axes.map((axis) => ({
    label: plainText(axis.key), values: axis.values, range: axis.range,
    tickvals: axis.tickvals, ticktext: axis.ticktext.map(plainText),
  }));
  dimensions.push({label: plainText(data.summary), values: data.scores});
  const trace = {
    type: "parcoords", dimensions: dimensions,
    line: {color: data.scores, colorscale: SCALE, showscale: true,
           colorbar: {title: {text: plainText(data.summary)}}},
  };
  Plotly.newPlot(element, [trace], {margin: {l: 80, r: 40, t: 60, b: 30}},
                 {responsive: true, displaylogo: false});
  element.dataset.drawn = "parcoords";
  element.on("plotly_restyle", () => showBrushed(element, data));
}

function inRange(value, ranges) {
  if (!ranges) return true;
  const list = Array.isArray(ranges[0]) ? ranges : [ranges];
  return list.some(([low, high]) => value >= low && value <= high);
}

// The runs inside every range dragged on the axes: their count, and a link comparing them.
function showBrushed(element, data) {
  const target = document.getElementById("brushed");
  if (!target) return;
  const dimensions = element.data[0].dimensions;
  const chosen = [];
  data.identifiers.forEach((identifier, run) => {
    if (dimensions.every((dimension) => inRange(dimension.values[run], dimension.constraintrange))) {
      chosen.push(identifier);
    }
  });
  if (chosen.length === data.identifiers.length) {
    target.textContent = "";
    return;
  }
  target.textContent = `${chosen.length} of ${data.identifiers.length} runs in the ranges chosen`;
  if (chosen.length && chosen.length <= 100) {
    const link = document.createElement("a");
    link.id = "compare-brushed";
    link.href = "/compare?runs=" + encodeURIComponent(chosen.join(","));
    link.textContent = "compare them";
    target.append(" · ", link);
  }
}

function drawScatter(element, data) {
  const scatter = data.scatter;
  const trace = {
    type: "scatter", mode: "markers", x: scatter.x, y: data.scores,
    text: data.identifiers.map(plainText), customdata: data.paths,
    marker: {color: data.scores, colorscale: SCALE, size: 7, opacity: 0.75},
    hovertemplate: "%{text}<br>%{x} → %{y}<extra></extra>",
  };
  const xaxis = {title: {text: plainText(scatter.key)}, type: scatter.type};
  if (scatter.categories) {
    xaxis.categoryorder = "array";
    xaxis.categoryarray = scatter.categories;
  }
  const missing = scatter.missing ? ` (${scatter.missing} runs without ${scatter.key} not shown)` : "";
  Plotly.newPlot(element, [trace], {
    margin: {l: 70, r: 20, t: 40, b: 50}, hovermode: "closest",
    title: {text: plainText(`${data.summary} against ${scatter.key}${missing}`), font: {size: 12}},
    xaxis: xaxis, yaxis: {title: {text: plainText(data.summary)}},
  }, {responsive: true, displaylogo: false});
  element.dataset.drawn = "scatter";
  element.on("plotly_click", (event) => {
    if (event.points.length) window.location.href = runUrl(event.points[0].customdata);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("params-form");
  form?.querySelectorAll("select").forEach((select) =>
    select.addEventListener("change", () => form.requestSubmit()));
  const source = document.getElementById("params-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  for (const [id, draw] of [["parcoords", drawParcoords], ["scatter", drawScatter]]) {
    const element = document.getElementById(id);
    try {
      draw(element, data);
    } catch (error) {
      showError(element, error.message);
    }
  }
});
