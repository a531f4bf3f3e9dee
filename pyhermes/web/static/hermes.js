// hermes serve, on every page: selects runs for compare, runs the "refresh" action and, on a
// writable server, the curation writes (tag, untag, note, archive). The charts are drawn by
// charts.js (loaded by the pages that have charts). Data comes from /api/... only.
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

// A Runs page answered before its match count: the count follows from /api/count.
async function fillCount() {
  const count = document.getElementById("count");
  if (!count || !count.dataset.countUrl) return;
  try {
    const total = (await fetchJson(count.dataset.countUrl)).total;
    count.textContent = `${total.toLocaleString("en")} ${total === 1 ? "run matches" : "runs match"}`;
    count.dataset.total = String(total);
    const pages = document.getElementById("page-count");
    if (pages) pages.textContent = Math.max(1, Math.ceil(total / Number(pages.dataset.perPage))).toLocaleString("en");
  } catch (error) {
    count.textContent = `count failed: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCuration();
  fillCount();
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => document.querySelectorAll("input.select-run")
      .forEach((box) => { box.checked = all.checked; }));
  }
});
