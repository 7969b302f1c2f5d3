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

// The detail page reloads itself until validation finishes.
registerPage("dataset-detail", (root) => {
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
