// The configure page: presets, sliders and selects, a live (debounced)
// estimate with breakdown, range, memory fit and checklist, then Start.
import { api } from "../api.js";
import { registerPage } from "../registry.js";

const $ = (root, sel) => root.querySelector(sel);
const money = (v) => (v == null ? "—" : `$${v.toFixed(2)}`);
const hours = (h) => (h == null ? "—" : h < 1 ? `${Math.round(h * 60)} min` : `${h.toFixed(1)} h`);
const fields = ["learning_rate", "num_epochs", "batch_size", "lora_rank", "lora_alpha", "lora_dropout", "max_seq_length"];
// Advanced settings: sent only when filled in (the server defaults them).
const advanced = ["gradient_accumulation_steps", "warmup_steps", "weight_decay"];
// Advanced choices that are not numbers.
const choices = ["lr_scheduler", "target_modules", "gradient_checkpointing"];
const attention = ["q_proj", "k_proj", "v_proj", "o_proj"];
// The CPU quick-start preset: the default when the chosen GPU is the local CPU.
const QUICK_DEMO = "quick-demo-cpu";

registerPage("training-configure", async (root) => {
  const form = $(root, "#configure");
  if (!form) return;
  const datasetId = form.dataset.datasetId;
  const cat = await api("GET", "/api/catalog");
  let preset = "balanced";
  const el = (id) => form.querySelector("#" + id);

  const setLR = (lr) => (el("learning_rate").value = Math.log10(lr));
  const getLR = () => Number(Math.pow(10, Number(el("learning_rate").value)).toPrecision(2));

  function applyPreset(id) {
    preset = id;
    const p = cat.presets.find((x) => x.id === id);
    const h = p.hyperparameters;
    setLR(h.learning_rate);
    for (const f of [...fields, ...advanced]) if (f !== "learning_rate" && h[f] != null && el(f)) el(f).value = h[f];
    // A preset made for one model (the CPU quick demo) selects it too.
    if (id === QUICK_DEMO && cat.base_models.some((m) => m.id === h.base_model)) {
      el("base_model").value = h.base_model;
      noteModel();
    }
    markPreset(id);
  }
  function markPreset(id) {
    for (const b of form.querySelectorAll(".preset")) b.setAttribute("aria-checked", String(b.dataset.preset === id));
    form.dataset.preset = id;
  }
  // Editing a hyperparameter leaves the preset: the job is then "custom".
  const hyperIds = new Set([...fields, ...advanced, ...choices]);
  function markCustom() {
    if (preset === "custom") return;
    preset = "custom";
    markPreset("custom");
  }
  form.addEventListener("input", (ev) => {
    if (hyperIds.has(ev.target.id)) markCustom();
  });

  // Presets
  const holder = $(form, "[data-presets]");
  for (const p of cat.presets) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "preset";
    b.dataset.preset = p.id;
    b.setAttribute("role", "radio");
    const h = p.hyperparameters;
    b.innerHTML = `<strong></strong><span></span>`;
    b.querySelector("strong").textContent = p.name;
    b.querySelector("span").textContent = p.id === "custom" ? "your own settings" : `lr ${h.learning_rate} · ${h.num_epochs} epochs · r${h.lora_rank}`;
    b.addEventListener("click", () => {
      applyPreset(p.id);
      refresh();
    });
    holder.append(b);
  }
  // Selects
  for (const m of cat.base_models) el("base_model").append(new Option(m.display_name + (m.local ? " (runs on CPU)" : ""), m.id));
  for (const g of cat.gpus) el("gpu_type").append(new Option(`${g.display_name} — ${g.cost_per_gpu_hour ? "$" + g.cost_per_gpu_hour.toFixed(2) + "/h" : g.cpu ? "free (local CPU)" : "free"}`, g.id));
  const fillCounts = () => {
    const g = cat.gpus.find((x) => x.id === el("gpu_type").value);
    const cur = el("num_gpus").value || "1";
    el("num_gpus").innerHTML = "";
    for (const n of g.allowed_counts) el("num_gpus").append(new Option(String(n), String(n)));
    el("num_gpus").value = g.allowed_counts.includes(Number(cur)) ? cur : String(g.allowed_counts[0]);
    $(form, "[data-gpu-note]").textContent = g.cpu ? `${g.memory_gb} GB RAM` : `${g.memory_gb} GB per GPU`;
  };
  const noteModel = () => {
    const m = cat.base_models.find((x) => x.id === el("base_model").value);
    $(form, "[data-model-note]").textContent = `${(m.parameters / 1e9).toFixed(m.parameters < 1e9 ? 2 : 1)}B parameters · ${m.context_length} context${m.has_chat_template ? "" : " · no chat template (fallback format)"}`;
  };
  // Defaults: the local demo model on the local CPU when present.
  const local = cat.base_models.find((m) => m.local);
  const cpu = cat.gpus.find((g) => g.cpu);
  el("base_model").value = local ? local.id : cat.base_models[0].id;
  el("gpu_type").value = cpu ? cpu.id : cat.gpus[0].id;
  const hasQuick = cat.presets.some((p) => p.id === QUICK_DEMO);
  // The preset that suits the chosen device: the quick demo on the local CPU.
  const presetFor = (g) => (g?.cpu && hasQuick ? QUICK_DEMO : "balanced");
  noteModel();
  applyPreset(presetFor(cpu && el("gpu_type").value === cpu.id ? cpu : null));
  fillCounts();
  // Without the quick-demo preset the local CPU starts from a batch that fits.
  if (cpu && el("gpu_type").value === cpu.id && !hasQuick) el("batch_size").value = "1";
  // "Run again with these settings": prefill from that job.
  if (form.dataset.from) {
    const { job } = await api("GET", `/api/jobs/${form.dataset.from}?since_step=1000000000`);
    const h = job.hyperparameters || {};
    const g = job.gpu_config || {};
    if (cat.base_models.some((m) => m.id === h.base_model)) el("base_model").value = h.base_model;
    const gp = cat.gpus.find((x) => x.gpu_type === g.gpu_type || x.id === g.gpu_type);
    if (gp) el("gpu_type").value = gp.id;
    fillCounts();
    if (g.num_gpus) el("num_gpus").value = String(g.num_gpus);
    if (h.learning_rate) setLR(h.learning_rate);
    for (const f of [...fields, ...advanced]) if (f !== "learning_rate" && h[f] != null && el(f)) el(f).value = h[f];
    preset = cat.presets.some((p) => p.id === job.preset_id) ? job.preset_id : "custom";
    markPreset(preset);
    el("job_name").value = job.name || "";
    el("lr_scheduler").value = ["linear", "constant"].includes(h.lr_scheduler) ? h.lr_scheduler : "";
    el("target_modules").value = Array.isArray(h.target_modules) && h.target_modules.join() === attention.join() ? "attention" : "";
    el("gradient_checkpointing").checked = !!h.gradient_checkpointing;
    noteModel();
  }

  const outputs = () => {
    form.querySelector('[data-out="learning_rate"]').textContent = getLR().toExponential(1);
    form.querySelector('[data-out="num_epochs"]').textContent = el("num_epochs").value;
    form.querySelector('[data-out="lora_rank"]').textContent = el("lora_rank").value;
  };

  const request = () => ({
    dataset_id: datasetId,
    preset_id: preset,
    hyperparameters: {
      base_model: el("base_model").value,
      learning_rate: getLR(),
      num_epochs: Number(el("num_epochs").value),
      batch_size: Number(el("batch_size").value),
      lora_rank: Number(el("lora_rank").value),
      lora_alpha: Number(el("lora_alpha").value),
      lora_dropout: Number(el("lora_dropout").value),
      max_seq_length: Number(el("max_seq_length").value),
      ...Object.fromEntries(advanced.filter((f) => el(f).value.trim() !== "").map((f) => [f, Number(el(f).value)])),
      ...(el("lr_scheduler").value ? { lr_scheduler: el("lr_scheduler").value } : {}),
      ...(el("target_modules").value === "attention" ? { target_modules: attention } : {}),
      ...(el("gradient_checkpointing").checked ? { gradient_checkpointing: true } : {}),
    },
    gpu_config: { gpu_type: el("gpu_type").value, num_gpus: Number(el("num_gpus").value) },
    allow_truncation: consent(),
    name: el("job_name").value.trim(),
  });
  // Consent to a max_seq_length that drops examples (the server refuses
  // such a job without it).
  const consent = () => !!form.querySelector("#allow_truncation")?.checked;

  const est = (k) => form.querySelector(`[data-est="${k}"]`);
  const errs = $(form, "[data-errors]");
  const start = $(form, "[data-start]");
  let seq = 0;
  let timer;

  const gpu = () => cat.gpus.find((x) => x.id === el("gpu_type").value);
  function render(e) {
    if (gpu()?.cpu && e.cost_breakdown.compute === 0) {
      est("cost").textContent = "Free";
      est("range").textContent = "(local CPU)";
    } else {
      est("cost").textContent = money(e.estimated_cost);
      est("range").textContent = `${money(e.cost_range.low)}–${money(e.cost_range.high)}`;
    }
    est("hours").textContent = hours(e.estimated_duration_hours);
    est("gpu_hours").textContent = e.gpu_hours.toFixed(2);
    est("tokens").textContent = e.tokens_used.toLocaleString();
    est("compute").textContent = money(e.cost_breakdown.compute);
    est("storage").textContent = money(e.cost_breakdown.storage);
    est("transfer").textContent = money(e.cost_breakdown.data_transfer);
    est("basis").textContent = `${e.basis} · ${Math.round(e.tokens_per_second).toLocaleString()} tokens/s · ${e.total_steps} steps`;
    const m = e.memory;
    const pct = Math.min(100, (100 * m.required_gb) / m.available_gb);
    est("memory").innerHTML = `<div>Memory: <strong></strong></div><div class="bar${m.fits ? "" : " over"}"><span style="width:${pct}%"></span></div>`;
    // The full "does not fit" advice is in the checklist below, once.
    est("memory").querySelector("strong").textContent = `${m.required_gb.toFixed(1)} of ${m.available_gb} GB${gpu()?.cpu ? " RAM" : ""}${m.fits ? "" : " — does not fit"}`;
    if (!m.fits && m.max_batch_size > 0) {
      const fix = document.createElement("button");
      fix.type = "button";
      fix.className = "btn";
      fix.dataset.fixBatch = String(m.max_batch_size);
      fix.textContent = `Use batch size ${m.max_batch_size}`;
      fix.style.marginTop = "8px";
      fix.addEventListener("click", () => {
        el("batch_size").value = String(m.max_batch_size);
        refresh();
      });
      est("memory").append(fix);
    }
    if (!m.fits && m.fits_with_checkpointing && !el("gradient_checkpointing").checked) {
      const gc = document.createElement("button");
      gc.type = "button";
      gc.className = "btn";
      gc.dataset.fixCheckpointing = "";
      gc.textContent = "Turn on gradient checkpointing";
      gc.style.marginTop = "8px";
      gc.addEventListener("click", () => {
        el("gradient_checkpointing").checked = true;
        markCustom();
        refresh();
      });
      est("memory").append(gc);
    }
    renderPreflight(e.preflight);
    renderTokenBasis(e.preflight);
    const list = $(form, "[data-checklist]");
    list.innerHTML = "";
    for (const c of e.checklist) {
      const li = document.createElement("li");
      li.textContent = c.message;
      if (!c.ok) li.className = "fail";
      li.dataset.check = c.id;
      list.append(li);
    }
    const pf = e.preflight;
    start.disabled = !e.checklist.every((c) => c.ok || (c.id === "within_budget" && !e.budget.hard_stop) ||
      (c.id === "examples_kept" && consent() && pf && pf.training_examples_kept > 0) ||
      c.id === "agent_available"); // a job may wait in the queue for an agent
    const noAgent = list.querySelector('[data-check="agent_available"].fail');
    if (noAgent) {
      const a = document.createElement("a");
      a.href = "/help/agents";
      a.textContent = "How to start one";
      noAgent.append(" — ", a);
    }
  }

  // Whether the token counts are exact (an agent counted them with the
  // model's tokenizer) or approximate; while an agent is counting, the
  // estimate is asked again every 5 s (at most 5 minutes) so the page turns
  // exact without a reload.
  let exactPolls = 0;
  let exactTimer;
  function renderTokenBasis(pf) {
    const b = est("token-basis");
    clearTimeout(exactTimer);
    b.dataset.exact = pf ? String(pf.exact) : "";
    if (!pf) {
      b.textContent = "";
      return;
    }
    if (pf.exact) {
      b.textContent = "Token counts: exact (counted with this model's tokenizer and chat template).";
      return;
    }
    let s = "Token counts: approximate (about 4 bytes per token)";
    if (pf.exact_status === "queued" || pf.exact_status === "running") {
      s += "; an agent is counting them exactly and this estimate will update.";
      if (exactPolls++ < 60) exactTimer = setTimeout(refresh, 5000);
    } else if (pf.exact_status === "failed") {
      s += "; the exact count failed, so these numbers err on the safe side.";
    } else s += ".";
    b.textContent = s;
  }

  // What max_seq_length does to the dataset, in words, with a one-click fix
  // and, when examples are dropped, a consent box.
  function renderPreflight(pf) {
    const box = $(form, "[data-preflight]");
    const wasChecked = consent();
    box.innerHTML = "";
    box.hidden = !pf || !pf.message;
    if (box.hidden) return;
    box.className = `alert ${pf.examples_dropped > 0 ? "alert-error" : "alert-info"} preflight`;
    const p = document.createElement("p");
    p.textContent = pf.message;
    box.append(p);
    if (pf.keep_all_within_model) {
      const fix = document.createElement("button");
      fix.type = "button";
      fix.className = "btn";
      fix.dataset.fixSeq = String(pf.keep_all_max_seq_length);
      fix.textContent = `Use ${pf.keep_all_max_seq_length.toLocaleString()} tokens`;
      fix.addEventListener("click", () => {
        el("max_seq_length").value = String(pf.keep_all_max_seq_length);
        markCustom();
        refresh();
      });
      box.append(fix);
    }
    if (pf.examples_dropped > 0 && pf.training_examples_kept > 0) {
      const label = document.createElement("label");
      label.className = "consent";
      label.innerHTML = `<input type="checkbox" id="allow_truncation"> <span></span>`;
      label.querySelector("span").textContent = `Train anyway on ${pf.examples_kept} of ${pf.examples_total} examples`;
      label.querySelector("input").checked = wasChecked;
      box.append(label);
    }
  }

  // Validation errors: each under its field (marked invalid); the rest, and
  // errors without details, in the box under the form.
  function clearErrors() {
    errs.hidden = true;
    errs.textContent = "";
    for (const x of form.querySelectorAll("[data-field-error]")) x.remove();
    for (const x of form.querySelectorAll("[aria-invalid]")) {
      x.removeAttribute("aria-invalid");
      x.removeAttribute("aria-describedby");
      x.closest(".field")?.classList.remove("field-invalid");
    }
  }
  function showErrors(err) {
    clearErrors();
    const rest = [];
    for (const [k, v] of Object.entries(err.details || {})) {
      if (k === "preflight") continue; // shown by the estimate
      const id = k.replace(/^(hyperparameters|gpu_config)\./, "");
      const msg = typeof v === "string" ? v : JSON.stringify(v);
      const input = el(id);
      const field = input?.closest(".field");
      if (!field) {
        rest.push(`${id.replaceAll("_", " ")}: ${msg}`);
        continue;
      }
      const note = document.createElement("span");
      note.className = "error";
      note.id = `${id}-error`;
      note.dataset.fieldError = id;
      note.textContent = msg;
      field.append(note);
      field.classList.add("field-invalid");
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", note.id);
      if (field.closest("details")) field.closest("details").open = true;
    }
    if (!err.details || rest.length) {
      errs.hidden = false;
      errs.textContent = err.details ? rest.join("\n") : "";
      if (err.status === 401) {
        const a = document.createElement("a");
        a.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
        a.textContent = "Sign in again";
        errs.append("Your session has ended. ", a, " to come back to this page.");
      } else if (!err.details) errs.textContent = err.message;
    }
  }

  async function refresh() {
    outputs();
    noteModel();
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const my = ++seq;
      est("status").textContent = "Updating estimate…";
      try {
        const e = await api("POST", "/api/jobs/estimate", request());
        if (my !== seq) return;
        clearErrors();
        render(e);
        est("status").textContent = "";
        form.dataset.estimateCost = String(e.estimated_cost);
        form.dataset.estimateVersion = String(my);
      } catch (err) {
        if (my !== seq) return;
        showErrors(err);
        start.disabled = true;
        est("status").textContent = "";
      }
    }, 300);
  }

  form.addEventListener("input", refresh);
  el("gpu_type").addEventListener("change", () => {
    // Switching between the local CPU and a GPU switches between their default
    // presets, unless the user has made the settings their own.
    const want = presetFor(gpu());
    if (preset !== "custom" && preset !== want && (preset === QUICK_DEMO || want === QUICK_DEMO)) applyPreset(want);
    fillCounts();
    refresh();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const warn = form.querySelector("[data-preflight]:not([hidden]) p")?.textContent;
    if (!window.confirm(`Start training? Estimated cost ${est("cost").textContent}, about ${est("hours").textContent}.${warn ? "\n\n" + warn : ""}`)) return;
    start.disabled = true;
    try {
      const res = await api("POST", "/api/jobs", request());
      window.location.href = `/training/jobs/${res.job.id}`;
    } catch (err) {
      showErrors(err);
      start.disabled = false;
    }
  });
  refresh();
});
