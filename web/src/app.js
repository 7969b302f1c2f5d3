// BrightRun front-end: htmx for server-rendered interactions, plus a small
// JSON API helper that sends the CSRF token. Page scripts hook in by
// data-page attributes (see pages/*.js).
import htmx from "htmx.org";
import { api, csrfToken, sessionEnded } from "./api.js";
import { startBell } from "./bell.js";
import { runPage } from "./registry.js";
import "./pages/datasets.js";
import "./pages/training.js";
import "./pages/job.js";
import "./pages/model.js";
import "./pages/playground.js";
import "./pages/costs.js";
import "./pages/settings_notifications.js";
import "./pages/agents.js";

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

// An htmx request answered 401: the session ended while the page was open.
document.addEventListener("htmx:responseError", (e) => {
  if (e.detail.xhr?.status === 401) sessionEnded();
});

// Copy buttons for code snippets and tokens: <pre data-copy>.
function copyButtons(root) {
  for (const pre of root.querySelectorAll("pre[data-copy]")) {
    if (pre.parentElement.classList.contains("copy-wrap")) continue;
    const wrap = document.createElement("div");
    wrap.className = "copy-wrap";
    pre.replaceWith(wrap);
    wrap.append(pre);
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "btn copy-btn";
    btn.textContent = "Copy";
    btn.setAttribute("aria-label", "Copy to the clipboard");
    btn.addEventListener("click", async () => {
      const text = pre.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // Without the async clipboard (an insecure origin): select and copy.
        const range = document.createRange();
        range.selectNodeContents(pre);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        document.execCommand("copy");
      }
      btn.textContent = "Copied";
      setTimeout(() => (btn.textContent = "Copy"), 2000);
    });
    wrap.append(btn);
  }
}

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
  copyButtons(document);
  // Page scripts that add <pre data-copy> later announce it.
  window.addEventListener("brightrun:content", (e) => copyButtons(e.detail));
  setInterval(relTimes, 30000);
  startBell();
  runPage(document.body.dataset.page, document.body);
});
