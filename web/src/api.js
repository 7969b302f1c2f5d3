// JSON API helper: sends the CSRF token and unwraps the {success,data} /
// {error,details} envelopes.
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `request failed (${status})`);
    this.status = status;
    this.details = body?.details;
  }
}

export async function api(method, path, body) {
  const opts = { method, headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* empty body */
  }
  if (res.status === 401) {
    sessionEnded();
    throw new ApiError(401, { error: "Your session has ended. Sign in again to continue." });
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data?.data;
}

// sessionEnded shows, once, a banner with a sign-in link that comes back to
// this page (a request answered 401: the session expired or was revoked).
export function sessionEnded() {
  if (document.querySelector("[data-session-ended]")) return;
  const box = document.createElement("div");
  box.className = "alert alert-error session-ended";
  box.setAttribute("role", "alert");
  box.dataset.sessionEnded = "";
  const a = document.createElement("a");
  a.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
  a.textContent = "Sign in again";
  box.append("Your session has ended. ", a, " to come back to this page.");
  (document.querySelector("#content") || document.body).prepend(box);
}
