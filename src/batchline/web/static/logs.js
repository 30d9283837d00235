// An execution's log lines (#logs): fetched from the API, appended as text (never HTML), and
// followed every second while the execution runs; the level filter starts over.
"use strict";

(() => {
  const FOLLOW_MS = 1000;
  const section = document.getElementById("logs");
  if (!section) return;
  const lines = document.getElementById("log-lines");
  const level = document.getElementById("log-level");
  const download = document.getElementById("log-download");
  const state = document.getElementById("log-state");
  const base = section.dataset.logs;
  let after = null;
  let generation = 0;
  let running = Boolean(section.dataset.running);

  function write(item) {
    const row = document.createElement("span");
    row.className = "log-line l-" + item.level;
    const step = item.step_name ? " [" + item.step_name + "]" : "";
    row.textContent =
      item.time.replace("T", " ").slice(0, 23) + " " + item.level.padEnd(8) + " " +
      item.source + step + " " + item.logger + ": " + item.message + "\n";
    lines.appendChild(row);
  }

  async function fetchMore(mine) {
    const query = new URLSearchParams({ limit: "1000" });
    if (after !== null) query.set("after", String(after));
    if (level.value) query.set("level", level.value);
    try {
      const response = await fetch(base + "?" + query, { credentials: "same-origin" });
      if (mine !== generation) return;
      if (!response.ok) {
        state.textContent = response.status === 401 ? "session ended: log in again" : "logs unavailable (" + response.status + ")";
        return;
      }
      const page = await response.json();
      if (mine !== generation) return;
      const atBottom = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 4;
      page.items.forEach(write);
      if (page.next_after !== null) after = page.next_after;
      if (atBottom) lines.scrollTop = lines.scrollHeight;
      const wasRunning = running;
      running = page.running;
      const more = page.items.length === 1000;
      const dropped = page.dropped ? " · " + page.dropped + " lines dropped (cap " + page.cap + ")" : "";
      state.textContent = (running ? "following" : "ended") + dropped;
      if (more || running || wasRunning) {
        setTimeout(() => fetchMore(mine), more ? 0 : FOLLOW_MS);
      }
    } catch (err) {
      state.textContent = "server unreachable: retrying";
      setTimeout(() => fetchMore(mine), FOLLOW_MS);
    }
  }

  level.addEventListener("change", () => {
    generation += 1;
    after = null;
    lines.textContent = "";
    download.href = base + ".txt" + (level.value ? "?level=" + level.value : "");
    fetchMore(generation);
  });
  fetchMore(generation);
})();
