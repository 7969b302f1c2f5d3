// Dataset pages: direct upload with progress, then follow validation.
import { api } from "../api.js";
import { registerPage } from "../registry.js";

function putWithProgress(url, headers, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [k, v] of Object.entries(headers || {})) {
      // Browsers set Content-Length themselves from the body.
      if (k.toLowerCase() !== "content-length") xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let msg = `upload failed (${xhr.status})`;
      try {
        msg = JSON.parse(xhr.responseText).error || msg;
      } catch {
        /* S3 answers XML */
      }
      reject(new Error(msg));
    };
    xhr.onerror = () => reject(new Error("the upload was interrupted: check your connection and try again"));
    xhr.send(file);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

registerPage("dataset-new", (root) => {
  const form = root.querySelector("#upload-form");
  const fileInput = form.querySelector("#file");
  const nameInput = form.querySelector("#name");
  const errBox = form.querySelector("#upload-error");
  const prog = form.querySelector("#upload-progress");
  const bar = prog.querySelector(".progress > span");
  const status = form.querySelector("#upload-status");
  const submit = form.querySelector("#upload-submit");

  fileInput.addEventListener("change", () => {
    const f = fileInput.files[0];
    if (f && !nameInput.value) nameInput.value = f.name.replace(/\.(jsonl?|json)$/i, "");
  });

  const fail = (msg) => {
    errBox.textContent = msg;
    errBox.hidden = false;
    submit.disabled = false;
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    errBox.hidden = true;
    const file = fileInput.files[0];
    if (!file) return fail("Choose a file to upload.");
    if (!nameInput.value.trim()) return fail("Give the dataset a name.");
    submit.disabled = true;
    prog.hidden = false;
    try {
      status.textContent = "Preparing upload…";
      const desc = form.querySelector("#description").value.trim();
      const up = await api("POST", "/api/datasets", {
        name: nameInput.value.trim(),
        description: desc || undefined,
        file_name: file.name,
        file_size: file.size,
      });
      await putWithProgress(up.uploadUrl, up.uploadHeaders, file, (p) => {
        bar.style.width = `${Math.round(p * 100)}%`;
        status.textContent = `Uploading… ${Math.round(p * 100)}%`;
      });
      bar.style.width = "100%";
      status.textContent = "Upload complete. Validating…";
      await api("POST", `/api/datasets/${up.dataset.id}/confirm`);
      // A corrected file replaces the dataset with errors.
      if (form.dataset.replace) {
        try {
          await api("DELETE", `/api/datasets/${form.dataset.replace}`);
        } catch {
          // Already deleted, or in use: the new dataset stands either way.
        }
      }
      for (;;) {
        const { dataset } = await api("GET", `/api/datasets/${up.dataset.id}`);
        if (dataset.status === "ready" || dataset.status === "error") break;
        await sleep(1000);
      }
      window.location.href = `/datasets/${up.dataset.id}`;
    } catch (err) {
      const details = err.details ? " " + Object.entries(err.details).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
      fail(err.message + details);
    }
  });
});

// The conversation browser: every trainable example, a page at a time,
// with search (GET /api/datasets/{id}/examples).
function preview(root) {
  const box = root.querySelector("[data-preview]");
  if (!box) return;
  const list = box.querySelector("[data-preview-list]");
  const prev = box.querySelector("[data-preview-prev]");
  const next = box.querySelector("[data-preview-next]");
  const status = box.querySelector("[data-preview-status]");
  const search = box.querySelector("[data-preview-search]");
  const limit = 5;
  let page = 0;
  let q = "";
  const bubble = (m) => {
    if (m.role === "system") {
      const d = document.createElement("details");
      d.className = "chat-system";
      d.innerHTML = `<summary>System prompt</summary><div class="pre"></div>`;
      d.querySelector(".pre").textContent = m.content;
      return d;
    }
    const b = document.createElement("div");
    b.className = `bubble bubble-${m.role === "user" ? "user" : "assistant"}`;
    b.innerHTML = `<div class="bubble-role"></div><div class="pre"></div>`;
    b.querySelector(".bubble-role").textContent = m.role;
    b.querySelector(".pre").textContent = m.content;
    return b;
  };
  async function load(p) {
    status.textContent = "Loading…";
    try {
      const res = await api("GET", `/api/datasets/${box.dataset.dataset}/examples?page=${p}&limit=${limit}&q=${encodeURIComponent(q)}`);
      page = p;
      list.innerHTML = "";
      for (const ex of res.examples) {
        const c = document.createElement("div");
        c.className = "chat";
        c.dataset.example = "";
        const tag = document.createElement("div");
        tag.className = "small muted";
        tag.textContent = ex.split === "validation" ? "validation example" : "training example";
        c.append(tag, ...ex.messages.map(bubble));
        list.append(c);
      }
      const first = (p - 1) * limit + 1;
      status.textContent = res.examples.length
        ? `Examples ${first}–${first + res.examples.length - 1}${q ? ` matching “${q}”` : ""}`
        : q ? `No example matches “${q}”` : "No examples";
      prev.hidden = p <= 1;
      next.hidden = !res.has_more;
      next.textContent = "Next →";
    } catch (err) {
      status.textContent = err.message;
    }
  }
  next.addEventListener("click", () => load(page + 1));
  prev.addEventListener("click", () => load(page - 1));
  search.addEventListener("submit", (ev) => {
    ev.preventDefault();
    q = search.querySelector("input").value.trim();
    load(1);
  });
}

// The detail page reloads itself until validation finishes.
registerPage("dataset-detail", (root) => {
  preview(root);
  const head = root.querySelector("[data-dataset-id]");
  if (!head) return;
  const st = head.dataset.status;
  if (st !== "uploading" && st !== "validating") return;
  const id = head.dataset.datasetId;
  const tick = async () => {
    try {
      const { dataset } = await api("GET", `/api/datasets/${id}`);
      if (dataset.status !== st) return window.location.reload();
    } catch {
      /* keep trying */
    }
    setTimeout(tick, 1500);
  };
  setTimeout(tick, 1500);
});
