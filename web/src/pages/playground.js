// Playground: one conversation sent to the base model and to the adapter,
// both answers streamed side by side (fetch + server-sent events from
// /api/models/{id}/playground/chat), a stop button, held-out prompts from
// the validation split, and "which is better" votes kept as preferences.
import { api, csrfToken, sessionEnded } from "../api.js";
import { registerPage } from "../registry.js";

const SIDES = ["base", "adapter"];

// readEvents calls onEvent(name, data) for each server-sent event in res.
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      onEvent(name, data ? JSON.parse(data) : null);
    }
  }
}

function bubble(log, role, text) {
  const wrap = document.createElement("div");
  const who = document.createElement("div");
  who.className = "bubble-role";
  who.textContent = role === "user" ? "you" : role === "assistant" ? "answer" : role;
  const b = document.createElement("div");
  b.className = "pre bubble " + (role === "user" ? "bubble-user" : "bubble-assistant");
  b.textContent = text;
  wrap.append(who, b);
  log.append(wrap);
  log.scrollTop = log.scrollHeight;
  return b;
}

registerPage("model-playground", async (root) => {
  const id = root.querySelector("[data-model-id]").dataset.modelId;
  const $ = (sel) => root.querySelector(sel);
  const logs = { base: $('[data-log="base"]'), adapter: $('[data-log="adapter"]') };
  const form = $("[data-chat-form]");
  const input = $("#pg-input");
  const send = $("[data-send]");
  const stop = $("[data-stop]");
  const status = $("[data-status]");
  const vote = $("[data-vote]");
  const voteStatus = $("[data-vote-status]");
  const reference = $("[data-reference]");
  let history = { base: [], adapter: [] };
  let running = {};
  let last = null; // the latest exchange, for the vote
  let heldOut = [];
  let heldOutNext = 0;

  for (const [inp, key] of [[$("#pg-temperature"), "temperature"], [$("#pg-top-p"), "top_p"]]) {
    inp.addEventListener("input", () => { $(`[data-out="${key}"]`).textContent = inp.value; });
  }

  function params() {
    const seed = $("#pg-seed").value;
    return {
      temperature: Number($("#pg-temperature").value),
      top_p: Number($("#pg-top-p").value),
      max_tokens: Number($("#pg-max-tokens").value) || 256,
      seed: seed === "" ? null : Number(seed),
    };
  }

  function messagesFor(side) {
    const sys = $("#pg-system").value.trim();
    return (sys ? [{ role: "system", content: sys }] : []).concat(history[side]);
  }

  function setBusy(busy) {
    send.disabled = busy;
    stop.disabled = !busy;
    status.textContent = busy ? "Generating… (Esc stops)" : "";
  }

  async function stream(side, box, ctl) {
    const res = await fetch(`/api/models/${id}/playground/chat`, {
      method: "POST", signal: ctl.signal, credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify({ side, messages: messagesFor(side), ...params() }),
    });
    if (res.status === 401) sessionEnded();
    if (!res.ok) {
      let msg = `request failed (${res.status})`;
      try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
      throw new Error(msg);
    }
    let text = "";
    let outcome = { ok: false };
    await readEvents(res, (name, data) => {
      if (name === "text") {
        text += data.text;
        box.textContent = text;
        box.parentElement.parentElement.scrollTop = box.parentElement.parentElement.scrollHeight;
      } else if (name === "done") {
        outcome = { ok: true, finish: data.finish_reason, usage: data.usage };
      } else if (name === "error") {
        throw new Error(data.error || "generation failed");
      }
    });
    return { text, ...outcome };
  }

  async function exchange(userText) {
    vote.hidden = true;
    voteStatus.textContent = "";
    const prompt = messagesFor("adapter").concat([{ role: "user", content: userText }]);
    const answers = {};
    setBusy(true);
    await Promise.all(SIDES.map(async (side) => {
      history[side].push({ role: "user", content: userText });
      bubble(logs[side], "user", userText);
      const box = bubble(logs[side], "assistant", "…");
      const ctl = new AbortController();
      running[side] = ctl;
      try {
        const r = await stream(side, box, ctl);
        if (!r.text) box.textContent = "(no text generated)";
        answers[side] = r;
        history[side].push({ role: "assistant", content: r.text });
        if (r.finish === "length") box.title = "stopped at max tokens";
      } catch (e) {
        const stopped = ctl.signal.aborted;
        const partial = box.textContent === "…" ? "" : box.textContent;
        box.textContent = stopped ? (partial ? partial + " [stopped]" : "[stopped]") : "Error: " + e.message;
        if (stopped && partial) history[side].push({ role: "assistant", content: partial });
        else history[side].pop();
        answers[side] = { ok: false };
      } finally {
        delete running[side];
      }
    }));
    setBusy(false);
    if (answers.base.ok && answers.adapter.ok) {
      last = { messages: prompt, base: answers.base.text, adapter: answers.adapter.text };
      vote.hidden = false;
      vote.querySelector("button").focus();
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || send.disabled) return;
    input.value = "";
    exchange(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  const stopAll = () => Object.values(running).forEach((c) => c.abort());
  stop.addEventListener("click", stopAll);
  root.addEventListener("keydown", (e) => { if (e.key === "Escape") stopAll(); });

  function reset() {
    stopAll();
    history = { base: [], adapter: [] };
    SIDES.forEach((s) => { logs[s].textContent = ""; });
    vote.hidden = true;
    reference.hidden = true;
  }
  $("[data-reset]").addEventListener("click", reset);

  $("[data-heldout]").addEventListener("click", () => {
    if (!heldOut.length) return;
    reset();
    const p = heldOut[heldOutNext++ % heldOut.length];
    const turns = p.messages.slice(0, -1);
    for (const side of SIDES) {
      history[side] = turns.map((m) => ({ ...m }));
      turns.forEach((m) => bubble(logs[side], m.role, m.content));
    }
    input.value = p.messages[p.messages.length - 1].content;
    $("[data-reference-text]").textContent = p.reference || "(none)";
    reference.hidden = false;
    input.focus();
  });

  async function loadPrefs() {
    const d = await api("GET", `/api/models/${id}/preferences`);
    const list = $("[data-prefs]");
    list.textContent = "";
    const words = { base: "base model better", adapter: "adapter better", tie: "tie" };
    d.preferences.slice(-20).reverse().forEach((p) => {
      const li = document.createElement("li");
      li.textContent = `${words[p.winner]}: “${p.prompt.slice(0, 80)}${p.prompt.length > 80 ? "…" : ""}”`;
      list.append(li);
    });
    $("[data-pref-count]").textContent = d.preferences.length === 1 ? "1 vote" : `${d.preferences.length} votes`;
  }

  vote.querySelectorAll("[data-choice]").forEach((b) => b.addEventListener("click", async () => {
    if (!last) return;
    try {
      await api("POST", `/api/models/${id}/preferences`, { messages: last.messages, left_side: "base", left_text: last.base, right_text: last.adapter, choice: b.dataset.choice });
      vote.hidden = true;
      last = null;
      input.focus();
      // "Saved." once the list shows the new vote (the list is the record).
      await loadPrefs();
      voteStatus.textContent = "Saved.";
    } catch (e) {
      voteStatus.textContent = e.message;
    }
  }));

  try {
    const d = await api("GET", `/api/models/${id}/playground`);
    heldOut = d.playground.prompts;
  } catch { /* the button stays usable only with prompts */ }
  loadPrefs().catch(() => { $("[data-pref-count]").textContent = "Votes could not be loaded."; });
});
