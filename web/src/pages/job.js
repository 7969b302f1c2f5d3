// The job monitor: polls GET /api/jobs/{id}?since_step=N while the job is
// active, appends only the new points to the uPlot chart, and keeps the
// stage, progress, ETA, metrics, cost and event log current.
import uPlot from "uplot";
import { api } from "../api.js";
import { registerPage } from "../registry.js";
import { label, stepAxis } from "../labels.js";

const stages = ["queued", "downloading", "preparing", "loading_model", "training", "evaluating", "saving", "uploading", "completed"];
const fmt = (v, d = 3) => (v == null ? "—" : Number(v).toFixed(d));
const dur = (s) => {
  if (s == null || !isFinite(s) || s < 0) return "—";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
};

registerPage("training-job", (root) => {
  const head = root.querySelector("[data-job-id]");
  const id = head.dataset.jobId;
  const live = (k) => root.querySelector(`[data-live="${k}"]`);
  const chartEl = root.querySelector("[data-chart]");
  const data = [[], [], [], []]; // step, training loss, validation loss, lr
  let since = -1;
  let plot = null;
  let status = head.dataset.status;

  function setStage(stage, st) {
    const idx = stages.indexOf(st === "completed" ? "completed" : stage);
    root.querySelectorAll("[data-stage-name]").forEach((li, i) => {
      li.classList.toggle("done", idx >= 0 && i < idx);
      li.classList.toggle("current", i === idx);
    });
  }

  function ensurePlot() {
    if (plot || data[0].length === 0) return;
    chartEl.querySelector("[data-chart-empty]")?.remove();
    const width = Math.max(280, chartEl.clientWidth);
    plot = new uPlot(
      {
        width, height: 280,
        scales: { x: { time: false }, lr: { auto: true } },
        axes: [stepAxis, { label: "loss" }, { scale: "lr", side: 1, label: "learning rate", grid: { show: false }, values: (u, v) => v.map((x) => x.toExponential(0)) }],
        series: [{ label: "step" }, { label: "training loss", stroke: "#4f46e5", width: 2 }, { label: "validation loss", stroke: "#f59e0b", width: 2, points: { show: true, size: 6 }, spanGaps: true }, { label: "learning rate", stroke: "#94a3b8", scale: "lr", dash: [4, 4] }],
        legend: { show: false },
      },
      data,
      chartEl,
    );
    chartEl.uplot = plot; // browser tests read the axis ticks
    window.addEventListener("resize", () => plot.setSize({ width: Math.max(280, chartEl.clientWidth), height: 280 }));
  }

  function addPoints(points) {
    for (const p of points) {
      const i = data[0].indexOf(p.step);
      if (i >= 0) {
        if (p.training_loss != null) data[1][i] = p.training_loss;
        if (p.validation_loss != null) data[2][i] = p.validation_loss;
        if (p.learning_rate != null) data[3][i] = p.learning_rate;
        continue;
      }
      data[0].push(p.step);
      data[1].push(p.training_loss ?? null);
      data[2].push(p.validation_loss ?? null);
      data[3].push(p.learning_rate ?? null);
      since = Math.max(since, p.step);
    }
    ensurePlot();
    if (plot) plot.setData(data);
    root.dataset.points = String(data[0].length);
  }

  function renderJob(j, events) {
    // While a job runs its badge names the stage, as the stepper does.
    const running = j.status === "initializing" || j.status === "running";
    live("status").textContent = running && j.current_stage ? label(j.current_stage) : label(j.status);
    live("status").title = `status: ${j.status}`;
    live("status").className = `badge badge-${j.status}`;
    // In the evaluating stage the agent reports the share of evaluation done
    // (validation losses, then the answers), not of training.
    const evaluating = running && j.current_stage === "evaluating";
    live("progress").textContent = evaluating ? `evaluating ${Math.round(j.progress)}%` : `${Math.round(j.progress)}%`;
    live("progress-bar").style.width = `${j.progress}%`;
    live("epoch").textContent = j.current_epoch;
    live("step").textContent = j.current_step;
    live("total-steps").textContent = j.total_steps ?? "?";
    const m = j.current_metrics || {};
    live("training_loss").textContent = fmt(m.training_loss);
    live("validation_loss").textContent = fmt(m.validation_loss);
    live("throughput").textContent = m.throughput != null ? Math.round(m.throughput).toLocaleString() : "—";
    live("gpu").textContent = m.gpu_utilization != null ? `GPU ${Math.round(m.gpu_utilization)}%${m.gpu_memory_gb != null ? " · " + m.gpu_memory_gb.toFixed(1) + " GB" : ""}` : "GPU —";
    live("cost").textContent = `$${(j.final_cost ?? j.current_cost).toFixed(2)}`;
    const started = j.started_at ? new Date(j.started_at) : null;
    const ended = j.completed_at ? new Date(j.completed_at) : new Date();
    live("elapsed").textContent = started ? dur((ended - started) / 1000) : "—";
    const active = ["queued", "initializing", "running"].includes(j.status);
    live("eta").textContent = active && j.estimated_completion_at ? dur((new Date(j.estimated_completion_at) - Date.now()) / 1000) : "—";
    setStage(j.current_stage, j.status);
    const list = root.querySelector("[data-events]");
    list.innerHTML = "";
    for (const e of events || []) {
      const li = document.createElement("li");
      li.className = e.level;
      const t = document.createElement("time");
      t.textContent = new Date(e.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      const msg = document.createElement("span");
      msg.textContent = (e.attempt > 1 ? `[attempt ${e.attempt}] ` : "") + e.message;
      li.append(t, msg);
      list.append(li);
    }
    list.scrollTop = list.scrollHeight;
  }

  async function tick() {
    try {
      const d = await api("GET", `/api/jobs/${id}?since_step=${since}`);
      addPoints(d.metrics);
      renderJob(d.job, d.events);
      if (d.job.status !== status && !["queued", "initializing", "running"].includes(d.job.status)) {
        status = d.job.status;
        setTimeout(() => window.location.reload(), 800);
        return;
      }
      status = d.job.status;
      if (!["queued", "initializing", "running"].includes(status)) return;
    } catch {
      /* transient; keep polling */
    }
    setTimeout(tick, 2000);
  }
  tick();
});
