// Model page: the job's loss curve and per-file signed downloads.
import uPlot from "uplot";
import { api } from "../api.js";
import { registerPage } from "../registry.js";
import { stepAxis } from "../labels.js";
import { startExports } from "./model_exports.js";

registerPage("model-detail", async (root) => {
  const head = root.querySelector("[data-model-id]");
  const id = head.dataset.modelId;
  startExports(root, id);
  root.querySelectorAll("[data-download]").forEach((b) =>
    b.addEventListener("click", async () => {
      const d = await api("POST", `/api/models/${id}/download`, { files: [b.dataset.download] });
      window.location.href = d.urls[0].url;
    }),
  );
  const el = root.querySelector("[data-chart]");
  try {
    const d = await api("GET", `/api/jobs/${head.dataset.jobId}`);
    const pts = d.metrics;
    el.innerHTML = "";
    if (!pts.length) return;
    el.uplot = new uPlot(
      {
        width: Math.max(280, el.clientWidth), height: 240, scales: { x: { time: false } }, legend: { show: false },
        axes: [stepAxis, { label: "loss" }],
        series: [{}, { label: "training", stroke: "#4f46e5", width: 2 }, { label: "validation", stroke: "#f59e0b", width: 2, points: { show: true, size: 6 }, spanGaps: true }],
      },
      [pts.map((p) => p.step), pts.map((p) => p.training_loss), pts.map((p) => p.validation_loss)],
      el,
    );
  } catch {
    el.textContent = "The loss curve is not available.";
  }
});
