// The notification bell's unread count, refreshed without reload. The
// notifications API arrives with the notifications issue; until then the
// badge stays hidden when the endpoint is absent.
import { api } from "./api.js";

export function startBell() {
  const badge = document.querySelector("[data-bell-count]");
  if (!badge) return;
  const refresh = async () => {
    try {
      const d = await api("GET", "/api/notifications?unread=true&limit=1");
      const n = d?.unread_count || 0;
      badge.textContent = n > 99 ? "99+" : String(n);
      badge.hidden = n === 0;
    } catch {
      badge.hidden = true;
    }
  };
  refresh();
  setInterval(refresh, 30000);
}
