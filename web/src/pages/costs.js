// Costs page: the monthly budget form.
import { api } from "../api.js";
import { registerPage } from "../registry.js";

registerPage("costs", (root) => {
  const form = root.querySelector("#budget-form");
  if (!form) return;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = form.querySelector("#monthly_budget").value.trim();
    const status = form.querySelector("[data-budget-status]");
    try {
      await api("PUT", "/api/settings/budget", { monthly_budget: v === "" ? null : Number(v), hard_stop: form.querySelector("#hard_stop").checked });
      window.location.reload();
    } catch (err) {
      status.textContent = err.message;
    }
  });
});
