// Human words for the ids the JSON API returns (the server-rendered pages
// use ui.Label, which has the same words).
const words = {
  queued: "Queued", initializing: "Starting", running: "Running", completed: "Completed", failed: "Failed",
  cancelled: "Cancelled", downloading: "Downloading data", preparing: "Preparing data", loading_model: "Loading model",
  training: "Training", evaluating: "Evaluating", saving: "Saving", uploading: "Uploading",
};

export function label(id) {
  if (id == null || id === "") return "";
  if (words[id]) return words[id];
  const s = String(id).replaceAll("_", " ");
  return s[0].toUpperCase() + s.slice(1);
}

// Integer step ticks for uPlot's x axis (a step is a whole number).
export const stepAxis = {
  label: "step",
  incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000],
  values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? v.toLocaleString() : "")),
};
