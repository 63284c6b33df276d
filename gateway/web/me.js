// A member's own page. The link's token is in the URL's fragment (never sent to a server);
// it is kept for this tab only and sent as a bearer token to /me/profile.
"use strict";

const FIELDS = ["display_name", "profession", "ask_me_about"];
const $ = (id) => document.getElementById(id);

function token() {
  const fromLink = location.hash.slice(1);
  if (fromLink) {
    sessionStorage.setItem("varco-link", fromLink);
    // Out of the address bar: a shared screen or a copied URL does not carry it.
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("varco-link") || "";
}

async function call(method, body) {
  const response = await fetch("/me/profile", {
    method,
    headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

function explain(result) {
  if (result.status === 401) {
    return "This link has expired or is not valid. Ask the space for a new one.";
  }
  const detail = result.data.detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => e.msg.replace(/^Value error, /, "")).join("; ");
  }
  return detail || `Something went wrong (${result.status}).`;
}

function show(profile) {
  $("greeting").textContent = `Hello, ${profile.name}.`;
  $("opt_in").checked = profile.opt_in;
  for (const field of FIELDS) $(field).value = profile[field] || "";
  $("skills").value = (profile.skills || []).join(", ");
  const since = profile.consent_at
    ? ` since ${new Date(profile.consent_at).toLocaleString()}`
    : "";
  $("consent").textContent = profile.opt_in
    ? `You are on the board${since}.`
    : "You are not on the board.";
}

async function load() {
  const result = await call("GET");
  if (!result.ok) {
    $("status").textContent = explain(result);
    return;
  }
  show(result.data);
  $("profile").hidden = false;
  $("status").textContent = "";
}

async function save(event) {
  event.preventDefault();
  const body = { opt_in: $("opt_in").checked };
  for (const field of FIELDS) body[field] = $(field).value.trim() || null;
  body.skills = $("skills").value.split(",").map((s) => s.trim()).filter(Boolean);
  const result = await call("PUT", body);
  $("error").hidden = result.ok;
  if (!result.ok) {
    $("error").textContent = explain(result);
    return;
  }
  show(result.data);
  $("status").textContent = "Saved.";
}

document.addEventListener("DOMContentLoaded", () => {
  $("profile").addEventListener("submit", save);
  load();
});
