// Cyclotron dashboard: refresh the page's live part (30 s; 2 s while a run is active) and send
// approval decisions with the write token. Text from the server is only ever inserted as parsed,
// server-escaped HTML or as textContent: manifest strings are untrusted.
"use strict";

const TOKEN_KEY = "cyclotron-token";
const SLOW_MS = 30000;
const LIVE_MS = 2000;
// While idle, a glance at /api/fleet every few seconds notices a run starting (or finishing, or a
// new approval) without waiting for the 30 s refresh.
const WATCH_MS = 2000;

function storedToken() {
  try { return window.localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
}

function keepToken(value) {
  try { window.localStorage.setItem(TOKEN_KEY, value); } catch (e) { /* private mode: ask again */ }
}

// `cyclotron serve` prints a link ending in #token=...: the fragment never reaches a server.
function tokenFromFragment() {
  const match = /^#token=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (match) {
    keepToken(match[1]);
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function showTokenState() {
  const input = document.getElementById("token");
  const state = document.getElementById("token-state");
  if (!input || !state) return;
  state.textContent = storedToken() ? "token set for this browser" : "enter the token to approve or reject";
}

function busy() {
  const el = document.activeElement;
  return el && el.closest("#live") && (el.tagName === "INPUT" || el.tagName === "SELECT");
}

async function refresh() {
  if (busy()) return;
  const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
  if (!response.ok) return;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = doc.getElementById("live");
  const current = document.getElementById("live");
  if (!fresh || !current || busy()) return;
  current.replaceWith(document.adoptNode(fresh));
  document.body.dataset.live = doc.body.dataset.live;
  document.body.dataset.sig = doc.body.dataset.sig;
  follow();
  for (const id of ["meta", "pending-count"]) {
    const now = document.getElementById(id);
    const next = doc.getElementById(id);
    if (now && next) now.replaceWith(document.adoptNode(next));
  }
}

async function changedSinceLoad() {
  const response = await fetch("/api/fleet", { cache: "no-store" });
  if (!response.ok) return false;
  const fleet = await response.json();
  const sig = [fleet.current_run ? fleet.current_run.id : "", fleet.last_run ? fleet.last_run.id : "",
               fleet.pending_approvals].join("-");
  return sig !== document.body.dataset.sig;
}

function watch() {
  window.setTimeout(async () => {
    try {
      if (document.body.dataset.live !== "1" && await changedSinceLoad()) await refresh();
    } catch (e) { /* server away: try again next time */ }
    watch();
  }, WATCH_MS);
}

// While a run is active its progress streams in (server-sent events) and updates the rows in place.
let stream = null;

function follow() {
  const panel = document.getElementById("current-run");
  const id = panel ? panel.dataset.run : "";
  if (stream && stream.runId === id) return;
  if (stream) { stream.close(); stream = null; }
  if (!id || !window.EventSource) return;
  stream = new EventSource("/api/runs/" + encodeURIComponent(id) + "/events");
  stream.runId = id;
  stream.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
  stream.addEventListener("end", () => {
    stream.close();
    stream = null;
    refresh().catch(() => {});
  });
}

function showProgress(run) {
  const panel = document.getElementById("current-run");
  if (!panel || panel.dataset.run !== String(run.id)) return;
  for (const host of run.hosts) {
    const row = Array.from(panel.querySelectorAll("tr.host-progress")).find((r) => r.dataset.host === host.host);
    if (!row) { refresh().catch(() => {}); return; }
    row.dataset.status = host.status;
    const status = row.querySelector(".status");
    status.textContent = host.status;
    status.className = "status s-" + host.status.replace(/ /g, "-");
    row.querySelector(".done").textContent = String(host.items_done);
    row.querySelector(".total").textContent = String(host.items_total);
    row.querySelector(".task").textContent = host.current_task;
    row.querySelector(".error").textContent = host.error;
    const bar = row.querySelector("progress");
    const finished = ["complete", "failed", "unreachable"].includes(host.status);
    bar.max = host.items_total || 1;
    bar.value = host.items_total ? host.items_done : (finished ? 1 : 0);
  }
}

function schedule() {
  const delay = document.body.dataset.live === "1" ? LIVE_MS : SLOW_MS;
  window.setTimeout(async () => {
    try { await refresh(); } catch (e) { /* server away: try again next time */ }
    schedule();
  }, delay);
}

async function decide(form, decision) {
  const token = storedToken();
  if (!token) {
    document.getElementById("decision-result").textContent = "Enter the write token first (cyclotron serve printed it).";
    return;
  }
  const id = form.dataset.approval;
  const reason = form.elements.namedItem("reason").value;
  const response = await fetch("/api/approvals/" + encodeURIComponent(id), {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Cyclotron-Token": token },
    body: JSON.stringify({ decision: decision, reason: reason }),
  });
  let body = {};
  try { body = await response.json(); } catch (e) { body = {}; }
  let message;
  if (response.ok) {
    message = "Approval " + id + ": " + body.state + ".";
  } else {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || response.status);
    message = "Approval " + id + " not changed: " + detail;
  }
  if (document.activeElement) document.activeElement.blur();
  await refresh();
  // the refresh replaced the page's live part: write the outcome into the new one
  document.getElementById("decision-result").textContent = message;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("decide")) return;
  event.preventDefault();
  const decision = event.submitter ? event.submitter.value : "approve";
  decide(form, decision).catch((e) => {
    document.getElementById("decision-result").textContent = "Could not reach the dashboard: " + e;
  });
});

document.addEventListener("change", (event) => {
  if (event.target instanceof HTMLInputElement && event.target.id === "token") {
    keepToken(event.target.value.trim());
    event.target.value = "";
    showTokenState();
  }
});

tokenFromFragment();
showTokenState();
schedule();
watch();
follow();
