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
  if (!res.ok) throw new ApiError(res.status, data);
  return data?.data;
}
