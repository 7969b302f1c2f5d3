// The agents page (operators): create an agent token (shown once, with a
// copy button) and revoke agents.
import { api } from "../api.js";
import { registerPage } from "../registry.js";

registerPage("agents", (root) => {
  const form = root.querySelector("[data-agent-create]");
  const out = root.querySelector("[data-agent-token]");
  form?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = form.querySelector("#agent-name").value.trim();
    try {
      const res = await api("POST", "/api/agents", { name });
      out.hidden = false;
      out.className = "alert alert-ok";
      out.innerHTML = `<p><strong>Copy the token for <span></span> now</strong>; it will not be shown again. Start the agent with it:</p><pre data-copy data-new-agent-token></pre><pre data-copy></pre>`;
      out.querySelector("span").textContent = res.agent.name;
      out.querySelector("[data-new-agent-token]").textContent = res.token;
      out.querySelectorAll("pre")[1].textContent =
        `brightrun-trainer agent --server ${location.origin} --token ${res.token} --gpu-type H100-80GB --gpu-count 1`;
      window.dispatchEvent(new CustomEvent("brightrun:content", { detail: out }));
      form.reset();
    } catch (err) {
      out.hidden = false;
      out.className = "alert alert-error";
      out.textContent = err.details?.name || err.message;
    }
  });
  for (const b of root.querySelectorAll("[data-revoke-agent]")) {
    b.addEventListener("click", async () => {
      if (!window.confirm(`Revoke agent "${b.dataset.agentName}"? It stops getting jobs; a job it runs now fails over when its lease ends.`)) return;
      try {
        await api("DELETE", `/api/agents/${b.dataset.revokeAgent}`);
        b.closest("tr").remove();
      } catch (err) {
        window.alert(err.message);
      }
    });
  }
});
