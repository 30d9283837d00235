// batchline's dashboard: a few lines instead of a framework (no CDN, no build step).
// 1. While an execution runs, its live section (#live with data-poll) is fetched again every
//    second and swapped in, so counters, status and buttons follow without a reload. Focus,
//    scroll positions and open <details> survive the swap. When the session ends (a redirect
//    to the login page, 401, 403) or the execution is gone (4xx) polling stops and says so;
//    when the server is away (network error, 5xx) it says so, backs off, and says when it is
//    back. Messages go to one polite live region (#live-status).
// 2. Times (<time datetime="...Z">, rendered in UTC) are shown in the viewer's zone, labelled;
//    a header button switches to UTC and back (remembered in localStorage).
// 3. A table, chart or block that scrolls inside itself can be reached by keyboard.
// 4. A form with data-confirm asks before it submits (abandon).
"use strict";

const POLL_MS = 1000;
const MAX_BACKOFF_MS = 30000;
const TIMES_KEY = "batchline.times";
const SCROLLERS = "table, figure, pre";
const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";

let failures = 0;

// --- messages -------------------------------------------------------------------------------

function statusRegion() {
  let region = document.getElementById("live-status");
  if (!region) {
    region = document.createElement("p");
    region.id = "live-status";
    region.className = "live-status";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    document.body.appendChild(region);
  }
  return region;
}

function say(text, link) {
  const region = statusRegion();
  if (text) region.replaceChildren(text);
  else region.replaceChildren(); // :empty again, so it draws nothing
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    region.append(" ", a);
  }
}

// --- times ----------------------------------------------------------------------------------

function showUtc() {
  return window.localStorage.getItem(TIMES_KEY) === "utc";
}

function localZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local";
}

function localText(moment) {
  const parts = {};
  const format = new Intl.DateTimeFormat("en-US", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZoneName: "short",
  });
  for (const part of format.formatToParts(moment)) parts[part.type] = part.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
}

function showTimes(root) {
  const utc = showUtc();
  for (const time of root.querySelectorAll("time[datetime]")) {
    if (time.dataset.utc === undefined) time.dataset.utc = time.textContent;
    const moment = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    time.textContent = utc ? time.dataset.utc : localText(moment);
    time.title = utc ? localText(moment) : time.dataset.utc;
  }
}

function timesButton() {
  const header = document.querySelector("body > header");
  if (!header) return;
  const button = document.createElement("button");
  button.type = "button";
  button.id = "times";
  button.className = "tz";
  const label = () => {
    button.textContent = showUtc() ? "Times: UTC" : `Times: ${localZone()}`;
    button.setAttribute("aria-label", showUtc()
      ? "Times shown in UTC; show them in your time zone"
      : `Times shown in your time zone, ${localZone()}; show them in UTC`);
  };
  button.addEventListener("click", () => {
    window.localStorage.setItem(TIMES_KEY, showUtc() ? "local" : "utc");
    label();
    showTimes(document);
  });
  label();
  header.insertBefore(button, header.querySelector(".logout"));
}

// --- scrolling boxes ------------------------------------------------------------------------

function markScrollers(root) {
  for (const box of root.querySelectorAll(SCROLLERS)) {
    const scrolls = box.scrollWidth > box.clientWidth + 1;
    if (scrolls && !box.hasAttribute("tabindex")) {
      box.setAttribute("tabindex", "0");
      box.dataset.scrollFocus = "";
    } else if (!scrolls && box.dataset.scrollFocus !== undefined) {
      box.removeAttribute("tabindex");
      delete box.dataset.scrollFocus;
    }
  }
}

// --- the live section -----------------------------------------------------------------------

function carryOver(old, fresh) {
  // Same structure, new numbers: what the reader was doing stays where it was. Returns what
  // can only be applied once the fresh part is in the page (scroll positions need layout).
  const oldDetails = old.querySelectorAll("details");
  const freshDetails = fresh.querySelectorAll("details");
  oldDetails.forEach((d, k) => { if (freshDetails[k]) freshDetails[k].open = d.open; });
  const scrolled = new Map();
  for (const [key, box] of keyedScrollers(old)) if (box.scrollLeft) scrolled.set(key, box.scrollLeft);
  return () => {
    for (const [key, box] of keyedScrollers(fresh)) {
      if (scrolled.has(key)) box.scrollLeft = scrolled.get(key);
    }
  };
}

function keyedScrollers(root) {
  // A box is known by its id, else by its kind and rank among boxes of that kind: a box that
  // appears as the run goes on (a chart, an exit message) must not shift the others' places.
  const seen = new Map();
  return Array.from(root.querySelectorAll(SCROLLERS), (box) => {
    if (box.id) return [`#${box.id}`, box];
    const kind = `${box.tagName}.${box.className}`;
    const rank = (seen.get(kind) || 0) + 1;
    seen.set(kind, rank);
    return [`${kind}:${rank}`, box];
  });
}

function focusAgain(focused, old, fresh) {
  let again = focused.id ? fresh.querySelector(`#${CSS.escape(focused.id)}`) : null;
  if (!again) {
    const index = Array.prototype.indexOf.call(old.querySelectorAll(FOCUSABLE), focused);
    again = fresh.querySelectorAll(FOCUSABLE)[index] || null;
  }
  if (again) again.focus({ preventScroll: true });
}

function retryIn(ms) {
  return Math.round(ms / 1000);
}

function backOff(reason) {
  failures += 1;
  const next = Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS);
  say(`${reason} The live view is paused; trying again in ${retryIn(next)} s.`);
  return next;
}

function stop(reason, link) {
  const live = document.getElementById("live");
  if (live) live.removeAttribute("data-poll");
  say(reason, link);
}

async function pollOnce(live) {
  let response;
  try {
    response = await fetch(live.dataset.poll, {
      credentials: "same-origin",
      redirect: "manual", // a redirect means the login page: not something to swap in
      headers: { Accept: "text/html" },
    });
  } catch (err) {
    return backOff("Lost contact with the server.");
  }
  if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
    stop("Your session has ended: the live view stopped.", { href: "/login", text: "Log in again" });
    return null;
  }
  if (response.status >= 500) return backOff(`The server answered ${response.status}.`);
  if (!response.ok) {
    stop(`The live view stopped: the server answered ${response.status}.`, {
      href: window.location.pathname, text: "Reload",
    });
    return null;
  }
  let html;
  try {
    html = await response.text();
  } catch (err) {
    return backOff("Lost contact with the server.");
  }
  const holder = document.createElement("div");
  holder.innerHTML = html; // server-rendered, autoescaped HTML
  const fresh = holder.querySelector("#live");
  if (!fresh) return backOff("The server sent something unexpected.");
  showTimes(fresh);
  const scrollAgain = carryOver(live, fresh);
  const focused = live.contains(document.activeElement) ? document.activeElement : null;
  live.replaceWith(fresh);
  scrollAgain();
  if (focused) focusAgain(focused, live, fresh);
  markScrollers(fresh);
  if (failures) {
    failures = 0;
    const back = "Back in contact with the server: the live view follows again.";
    say(back);
    setTimeout(() => { if (statusRegion().textContent === back) say(""); }, 5000);
  }
  return POLL_MS;
}

function schedule(delay) {
  setTimeout(async () => {
    const live = document.getElementById("live");
    if (!live || !live.dataset.poll) return;
    const next = await pollOnce(live);
    if (next !== null) schedule(next);
  }, delay);
}

// --- wiring ---------------------------------------------------------------------------------

document.addEventListener("submit", (event) => {
  const message = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  statusRegion();
  timesButton();
  showTimes(document);
  markScrollers(document);
  let resized = null;
  window.addEventListener("resize", () => {
    clearTimeout(resized);
    resized = setTimeout(() => markScrollers(document), 200);
  });
  const live = document.getElementById("live");
  if (live && live.dataset.poll) schedule(POLL_MS);
});
