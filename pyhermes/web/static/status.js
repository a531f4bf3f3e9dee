// hermes serve, on every page: the state of the background sync in the header, and the
// "refresh" button that starts one. Uses fetchJson of hermes.js, which is loaded first.
"use strict";

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
