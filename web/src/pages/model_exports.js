// Model page, "Export" section: ask for a merged or GGUF export, follow its
// state (queued → being made by an agent → ready / failed) by polling the
// list while one is open, download, retry or delete it.
import { api } from "../api.js";

const POLL_MS = 2000;

export function formatBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...kids.filter((k) => k !== null && k !== undefined));
  return e;
}

const STATUS_WORDS = { queued: "Queued", running: "Being made", ready: "Ready", failed: "Failed" };

function describe(x) {
  switch (x.status) {
    case "queued":
      return "Waiting for a trainer agent that can make it.";
    case "running":
      return x.agent ? `Being made by ${x.agent}…` : "Being made…";
    case "ready":
      return `${formatBytes(x.size_bytes)} · ${x.file_name}`;
    default:
      return x.error || "The agent gave no reason.";
  }
}

function retryBody(x) {
  const b = { format: x.format };
  if (x.format === "gguf" && x.gguf_type) b.gguf_type = x.gguf_type;
  if (x.format === "merged" && x.dtype) b.dtype = x.dtype;
  return b;
}

export function startExports(root, modelId) {
  const box = root.querySelector("[data-exports]");
  if (!box) return;
  const list = box.querySelector("[data-export-list]");
  const msg = box.querySelector("[data-export-msg]");
  let timer = null;

  const say = (text, error = false) => {
    msg.textContent = text;
    msg.classList.toggle("error-text", error);
  };

  async function act(fn, okText) {
    try {
      await fn();
      if (okText) say(okText);
    } catch (e) {
      say(e.message, true);
    }
    refresh();
  }

  function row(x) {
    const badge = el("span", { class: `badge badge-${x.status}` }, STATUS_WORDS[x.status] || x.status);
    const head = el("div", { class: "export-head" }, el("strong", {}, x.label), " ", badge);
    const detail = el("div", { class: "small" + (x.status === "failed" ? " error-text" : " muted"), "data-export-detail": "" }, describe(x));
    const actions = el("div", { class: "actions" });
    if (x.status === "ready") {
      actions.append(el("a", { class: "btn btn-primary", href: x.download_url, "data-export-download": x.format }, "Download"));
    }
    if (x.status === "failed") {
      const retry = el("button", { class: "btn btn-primary", type: "button", "data-export-retry": x.format }, "Retry");
      retry.addEventListener("click", () => act(() => api("POST", `/api/models/${modelId}/exports`, retryBody(x)), `${x.label}: queued again.`));
      actions.append(retry);
    }
    if (x.status !== "running") {
      const del = el("button", { class: "btn", type: "button", "data-export-delete": x.format }, "Delete");
      del.setAttribute("aria-label", `Delete ${x.label}`);
      del.addEventListener("click", () => act(() => api("DELETE", `/api/models/${modelId}/exports/${x.id}`), `${x.label}: deleted.`));
      actions.append(del);
    }
    const li = el("li", { class: "export-row", "data-export-row": x.format, "data-status": x.status }, head, detail);
    if (x.status === "failed" && x.hint) li.append(el("div", { class: "small muted" }, x.hint));
    li.append(actions);
    return li;
  }

  async function refresh() {
    clearTimeout(timer);
    let exports;
    try {
      exports = (await api("GET", `/api/models/${modelId}/exports`)).exports;
    } catch (e) {
      say(`The exports could not be loaded: ${e.message}`, true);
      timer = setTimeout(refresh, POLL_MS * 3);
      return;
    }
    list.replaceChildren(...(exports.length ? exports.map(row) : [el("li", { class: "muted small", "data-export-empty": "" }, "No exports yet.")]));
    if (exports.some((x) => x.status === "queued" || x.status === "running")) timer = setTimeout(refresh, POLL_MS);
  }

  box.querySelectorAll("[data-export]").forEach((b) =>
    b.addEventListener("click", () =>
      act(async () => {
        const d = await api("POST", `/api/models/${modelId}/exports`, { format: b.dataset.export });
        const what = { ready: "is ready below", running: "is being made", failed: "failed: see below" }[d.export.status] || "queued";
        say(`${d.export.label} ${what}.`);
      }),
    ),
  );
  refresh();
}
