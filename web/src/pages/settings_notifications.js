// Notification settings page: save channels, reveal and rotate the webhook secret.
import { api } from "../api.js";
import { registerPage } from "../registry.js";

registerPage("settings-notifications", (root) => {
  const form = root.querySelector("#channels-form");
  if (form) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const status = form.querySelector("[data-channels-status]");
      status.textContent = "Saving…";
      try {
        await api("PUT", "/api/settings/notifications", {
          webhook_url: form.querySelector("#webhook_url").value.trim(),
          email_enabled: form.querySelector("#email_enabled").checked,
          email_address: form.querySelector("#email_address").value.trim(),
        });
        window.location.reload();
      } catch (err) {
        const fields = err.details ? Object.values(err.details).join(" ") : "";
        status.textContent = fields || err.message;
      }
    });
  }
  const secret = root.querySelector("[data-secret]");
  const reveal = root.querySelector("[data-reveal]");
  if (secret && reveal) {
    const masked = secret.textContent;
    reveal.addEventListener("click", () => {
      const shown = secret.textContent !== masked;
      secret.textContent = shown ? masked : secret.dataset.value;
      reveal.textContent = shown ? "Reveal" : "Hide";
    });
  }
  const rotate = root.querySelector("[data-rotate]");
  if (rotate) {
    rotate.addEventListener("click", async () => {
      if (!window.confirm(rotate.dataset.confirmText)) return;
      try {
        await api("POST", "/api/settings/notifications/rotate-secret", {});
        window.location.reload();
      } catch (err) {
        window.alert(err.message);
      }
    });
  }
});
