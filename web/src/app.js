// BrightRun front-end: htmx for server-rendered interactions, plus a small
// JSON API helper that sends the CSRF token. Page scripts hook in by
// data-page attributes (see pages/*.js).
import htmx from "htmx.org";
import { api, csrfToken } from "./api.js";
import { startBell } from "./bell.js";
import { runPage } from "./registry.js";
import "./pages/datasets.js";
import "./pages/training.js";
import "./pages/job.js";
import "./pages/model.js";
import "./pages/costs.js";
import "./pages/settings_notifications.js";

window.htmx = htmx;
window.brightrun = { api };

document.addEventListener("htmx:configRequest", (e) => {
  e.detail.headers["X-CSRF-Token"] = csrfToken();
});

// Confirmation for destructive buttons: <button data-confirm="...">.
document.addEventListener("submit", (e) => {
  const btn = e.submitter;
  const msg = btn?.dataset.confirm || e.target.dataset.confirm;
  if (msg && !window.confirm(msg)) e.preventDefault();
});

// Filters and sort menus that apply on change: <select data-autosubmit>.
// (Inline onchange handlers are blocked by the page's CSP.)
document.addEventListener("change", (e) => {
  const sel = e.target.closest("select[data-autosubmit]");
  if (sel?.form) sel.form.requestSubmit();
});

// htmx buttons whose result changes the whole page: <button data-reload-after>.
document.addEventListener("htmx:afterRequest", (e) => {
  if (e.detail.successful && e.detail.elt.closest("[data-reload-after]")) location.reload();
});

// Mobile navigation toggle.
document.addEventListener("click", (e) => {
  const t = e.target.closest("[data-nav-toggle]");
  if (t) document.body.classList.toggle("nav-open");
});

// Relative times: <time data-relative datetime="...">.
function relTimes() {
  const fmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const el of document.querySelectorAll("time[data-relative]")) {
    const d = new Date(el.getAttribute("datetime"));
    const s = (d - Date.now()) / 1000;
    const abs = Math.abs(s);
    const [v, u] = abs < 60 ? [s, "second"] : abs < 3600 ? [s / 60, "minute"] : abs < 86400 ? [s / 3600, "hour"] : [s / 86400, "day"];
    el.textContent = fmt.format(Math.round(v), u);
    el.title = d.toLocaleString();
  }
}


document.addEventListener("DOMContentLoaded", () => {
  relTimes();
  setInterval(relTimes, 30000);
  startBell();
  runPage(document.body.dataset.page, document.body);
});
