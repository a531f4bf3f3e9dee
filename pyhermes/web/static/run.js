// hermes serve, the Run page: keeps the smoothing window in the URL and redraws the curve
// (drawCurves of charts.js), and pages through the run's log files a window of lines at a
// time from /api/run/<path>/log/<name> (first, previous, next, last, follow tail).
// Uses fetchJson of hermes.js. Data comes from /api/... only.
"use strict";

const FOLLOW_EVERY_MS = 2000;

function setUrlParameter(name, value) {
  const url = new URL(window.location.href);
  url.searchParams.set(name, value);
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
}

// ---------------------------------------------------------------- smoothing window

function setUpWindowForm() {
  const form = document.getElementById("window-form");
  const chart = document.getElementById("curve-chart");
  if (!form || !chart) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = Number(form.window.value);
    if (!Number.isInteger(value) || value < 1) {
      form.window.setCustomValidity("a whole number of at least 1");
      form.window.reportValidity();
      return;
    }
    form.window.setCustomValidity("");
    setUrlParameter("window", String(value));
    const url = new URL(chart.dataset.url, window.location.href);
    url.searchParams.set("window", String(value));
    chart.dataset.url = url.pathname + url.search;
    chart.dataset.window = String(value);
    if (typeof drawCurves === "function") {
      drawCurves(chart);
    } else {
      window.location.reload();  // the page reads the window from its URL
    }
  });
}

// ---------------------------------------------------------------- log viewer

function number(value) {
  return Number(value).toLocaleString("en-US");
}

function setUpLogViewer() {
  const view = document.getElementById("log-view");
  if (!view) return;
  const select = document.getElementById("log-name");
  const position = document.getElementById("log-position");
  const follow = document.getElementById("log-follow");
  const download = document.getElementById("log-download");
  const buttons = {
    first: document.getElementById("log-first"),
    previous: document.getElementById("log-previous"),
    next: document.getElementById("log-next"),
    last: document.getElementById("log-last"),
  };
  const count = Number(view.dataset.count) || 200;
  let asked = 0;  // the number of the latest request: older answers are dropped
  let timer = null;

  const start = () => Number(view.dataset.start);
  const end = () => Number(view.dataset.end);
  const total = () => Number(view.dataset.total);

  function showButtons() {
    buttons.first.disabled = buttons.previous.disabled = start() <= 0;
    buttons.next.disabled = buttons.last.disabled = end() >= total();
  }

  function render(data, atEnd) {
    view.textContent = data.lines.length ? data.lines.join("\n") : "(empty)";
    view.dataset.start = String(data.start);
    view.dataset.end = String(data.end);
    view.dataset.total = String(data.total);
    position.classList.remove("error");
    position.textContent = data.total
      ? `lines ${number(data.start + 1)}–${number(data.end)} of ${number(data.total)} · ${data.human_size}`
      : "no lines";
    view.scrollTop = atEnd ? view.scrollHeight : 0;
    showButtons();
  }

  async function load(first) {
    const request = ++asked;
    const name = view.dataset.log;
    let url = `${view.dataset.api}/log/${encodeURIComponent(name)}?count=${count}`;
    if (first !== null) url += `&start=${Math.max(0, first)}`;
    view.dataset.loading = "1";
    try {
      const data = await fetchJson(url);
      if (request !== asked) return;
      render(data, first === null || data.end >= data.total);
    } catch (error) {
      if (request !== asked) return;
      position.textContent = error.message;
      position.classList.add("error");
    } finally {
      if (request === asked) delete view.dataset.loading;
    }
  }

  function stopFollowing() {
    if (timer !== null) window.clearInterval(timer);
    timer = null;
    follow.checked = false;
  }

  function choose(name) {
    if (!name || name === view.dataset.log) return;
    stopFollowing();
    view.dataset.log = name;
    select.value = name;
    download.href = `${view.dataset.api}/file/${encodeURIComponent(name)}`;
    setUrlParameter("log", name);
    load(null);
  }

  buttons.first.addEventListener("click", () => { stopFollowing(); load(0); });
  buttons.previous.addEventListener("click", () => { stopFollowing(); load(start() - count); });
  buttons.next.addEventListener("click", () => { stopFollowing(); load(end()); });
  buttons.last.addEventListener("click", () => load(null));
  select.addEventListener("change", () => choose(select.value));
  follow.addEventListener("change", () => {
    if (!follow.checked) {
      stopFollowing();
      return;
    }
    load(null);
    timer = window.setInterval(() => { if (!document.hidden) load(null); }, FOLLOW_EVERY_MS);
  });
  document.querySelectorAll("a.show-log[data-log]").forEach((link) =>
    link.addEventListener("click", () => choose(link.dataset.log)));

  view.scrollTop = view.scrollHeight;  // the page starts on the last lines
  showButtons();
  view.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => {
  setUpWindowForm();
  setUpLogViewer();
});
