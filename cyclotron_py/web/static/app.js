// Cyclotron dashboard: refresh the page's live part (30 s; 2 s while a run is active) and send
// approval decisions with the write token. Text from the server is only ever inserted as parsed,
// server-escaped HTML or as textContent: manifest strings are untrusted.
"use strict";

const TOKEN_KEY = "cyclotron-token";
const SLOW_MS = 30000;
const LIVE_MS = 2000;

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
  for (const id of ["meta", "pending-count"]) {
    const now = document.getElementById(id);
    const next = doc.getElementById(id);
    if (now && next) now.replaceWith(document.adoptNode(next));
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
  const result = document.getElementById("decision-result");
  const token = storedToken();
  if (!token) {
    result.textContent = "Enter the write token first (cyclotron serve printed it).";
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
  if (response.ok) {
    result.textContent = "Approval " + id + ": " + body.state + ".";
  } else {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || response.status);
    result.textContent = "Approval " + id + " not changed: " + detail;
  }
  if (document.activeElement) document.activeElement.blur();
  await refresh();
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
