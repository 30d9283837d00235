// batchline's dashboard: a few lines instead of a framework (no CDN, no build step).
// 1. While an execution runs, its live section (#live with data-poll) is fetched again every
//    second and swapped in, so counters, status and buttons follow without a reload.
// 2. A form with data-confirm asks before it submits (abandon).
"use strict";

const POLL_MS = 1000;

function schedule() {
  const live = document.getElementById("live");
  if (!live || !live.dataset.poll) return;
  setTimeout(async () => {
    try {
      const response = await fetch(live.dataset.poll, { credentials: "same-origin" });
      if (response.ok) {
        const holder = document.createElement("div");
        holder.innerHTML = await response.text(); // server-rendered, autoescaped HTML
        const fresh = holder.querySelector("#live");
        if (fresh) live.replaceWith(fresh);
      }
    } catch (err) {
      // the server restarting: try again at the next tick
    }
    schedule();
  }, POLL_MS);
}

document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", schedule);
