// The notification bell: unread count refreshed without reload, and a
// dropdown of the newest notifications (click marks one read and opens it).
import { api } from "./api.js";

export function startBell() {
  const bell = document.querySelector("[data-bell]");
  const badge = document.querySelector("[data-bell-count]");
  if (!bell || !badge) return;
  const menu = document.createElement("div");
  menu.className = "bell-menu";
  menu.hidden = true;
  menu.setAttribute("role", "menu");
  bell.parentElement.style.position = "relative";
  bell.after(menu);

  const render = (d) => {
    menu.innerHTML = "";
    const head = document.createElement("div");
    head.className = "bell-head";
    head.innerHTML = `<strong>Notifications</strong><a href="/notifications">see all</a>`;
    menu.append(head);
    if (!d.notifications.length) {
      const p = document.createElement("p");
      p.className = "muted small";
      p.style.padding = "12px 16px";
      p.textContent = "Nothing yet.";
      menu.append(p);
    }
    for (const n of d.notifications) {
      const a = document.createElement("a");
      a.className = "bell-item" + (n.read ? "" : " unread");
      a.href = n.action_url || "/notifications";
      a.dataset.notification = n.id;
      const t = document.createElement("strong");
      t.textContent = n.title;
      const m = document.createElement("span");
      m.textContent = n.message;
      a.append(t, m);
      a.addEventListener("click", async (e) => {
        if (!n.read) {
          e.preventDefault();
          try {
            await api("PATCH", `/api/notifications/${n.id}/read`);
          } finally {
            window.location.href = a.href;
          }
        }
      });
      menu.append(a);
    }
  };

  const refresh = async () => {
    try {
      const d = await api("GET", "/api/notifications?limit=8");
      const n = d?.unread_count || 0;
      badge.textContent = n > 99 ? "99+" : String(n);
      badge.hidden = n === 0;
      if (!menu.hidden) render(d);
      return d;
    } catch {
      badge.hidden = true;
    }
  };
  bell.addEventListener("click", async (e) => {
    e.preventDefault();
    if (!menu.hidden) {
      menu.hidden = true;
      return;
    }
    const d = await refresh();
    if (d) render(d);
    menu.hidden = false;
  });
  document.addEventListener("click", (e) => {
    if (!menu.hidden && !menu.contains(e.target) && !bell.contains(e.target)) menu.hidden = true;
  });
  refresh();
  setInterval(refresh, 15000);
}
