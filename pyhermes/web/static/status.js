// hermes serve, on every page: the state of the background sync in the header ("indexing 2,300
// of 6,000" while a sync reads runs), and the "refresh" button that starts one. On the page shown
// while the index is first built (#indexing), the progress, and a reload once the index is ready.
// Uses fetchJson of hermes.js, which is loaded first.
"use strict";

const POLL_MS = 1000;
const POLL_INDEXING_MS = 500;
let pollTimer = null;

function formatCount(n) {
  return Number(n).toLocaleString("en-US");
}

// "indexing 2,300 of 6,000" (a first build) or "syncing 2,300 of 6,000" (a refresh).
function headerProgress(status) {
  const word = status.indexing || !status.ready ? "indexing" : "syncing";
  if (status.phase === "reading" && status.total) {
    return `${word} ${formatCount(status.done)} of ${formatCount(status.total)}`;
  }
  if (status.phase === "writing" && status.total) return `${word}: writing`;
  return `${word}…`;
}

function showIndexingPage(page, status) {
  const line = document.getElementById("indexing-progress");
  if (line && status.message) line.textContent = status.message;
  const bar = document.getElementById("indexing-bar");
  if (bar && status.total && status.running) {
    bar.max = status.total;
    bar.value = status.done;
  }
  if (line) line.className = !status.running && status.error ? "error" : "";
}

function showSynced(label, status) {
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

async function pollStatus(label) {
  clearTimeout(pollTimer);
  pollTimer = null;
  const page = document.getElementById("indexing");
  let status;
  try {
    status = await fetchJson("/api/status");
  } catch (error) {
    label.textContent = "server unreachable";
    pollTimer = setTimeout(() => pollStatus(label), 2 * POLL_MS);
    return;
  }
  if (page && status.ready && !status.indexing) {
    location.reload();  // the index is built: the page asked for, with its real counts
    return;
  }
  if (page) showIndexingPage(page, status);
  if (status.running) {
    label.textContent = headerProgress(status);
    pollTimer = setTimeout(() => pollStatus(label), page ? POLL_INDEXING_MS : POLL_MS);
  } else if (status.error) {
    label.textContent = `${status.ready ? "sync" : "indexing"} failed: ${status.error}`;
    if (page) pollTimer = setTimeout(() => pollStatus(label), 2 * POLL_MS);
  } else if (status.report) {
    showSynced(label, status);
  } else if (page) {
    label.textContent = headerProgress(status);  // the build is about to start
    pollTimer = setTimeout(() => pollStatus(label), POLL_INDEXING_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
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
