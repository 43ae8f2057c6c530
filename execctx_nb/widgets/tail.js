// EventTail front-end: a plain ES module (no build step, nothing from a CDN).
// State lives in synced traitlets; this file only draws them and sends user intent back.

const KIND_CLASS = {
  "step.committed": "ok",
  "step.failed": "bad",
  "execution.status": "info",
  "execution.log": "log",
};

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function render({ model, el }) {
  el.classList.add("execctx-tail");
  const title = h("span", { class: "title" });
  const status = h("span", { class: "status" });
  // Pause / Resume while live; Restart once stopped (it continues after the last event).
  const pause = h("button", {
    type: "button",
    class: "pause",
    onclick: () => {
      if (stopped()) {
        model.send({ op: "restart" });
        return;
      }
      model.set("paused", !model.get("paused"));
      model.save_changes();
    },
  });
  const stopped = () => ["stopped", "error", "idle"].includes(model.get("status"));
  const kindBoxes = h("span", { class: "kinds" });
  const exec = h("input", {
    type: "text",
    class: "exec",
    placeholder: "execution id (all)",
    onchange: (e) => applyExec(e.target.value),
    onkeydown: (e) => {
      if (e.key === "Enter") applyExec(e.target.value); // Enter applies, as Tab or a click
    },
  });
  function applyExec(value) {
    if (value.trim() === model.get("execution_id")) return;
    model.set("execution_id", value.trim());
    model.save_changes();
  }
  const counts = h("span", { class: "counts" });
  const error = h("div", { class: "error" });
  const body = h("tbody");
  const table = h(
    "table",
    {},
    h("thead", {}, h("tr", {}, h("th", {}, "time"), h("th", {}, "kind"), h("th", {}, "execution"),
      h("th", {}, "step"), h("th", {}, "attempt"), h("th", {}, "summary"))),
    body,
  );
  el.append(
    h("div", { class: "bar" }, title, status, pause, kindBoxes, exec, counts),
    error,
    h("div", { class: "scroll" }, table),
  );

  function drawKinds() {
    kindBoxes.replaceChildren();
    const chosen = model.get("kinds");
    for (const kind of model.get("all_kinds")) {
      const box = h("input", { type: "checkbox", "data-kind": kind });
      box.checked = chosen.length === 0 || chosen.includes(kind);
      box.addEventListener("change", () => {
        const all = model.get("all_kinds");
        const on = [...kindBoxes.querySelectorAll("input")].filter((b) => b.checked)
          .map((b) => b.dataset.kind);
        if (on.length === 0) {
          // An empty list means "all kinds": keep at least one box ticked instead.
          box.checked = true;
          return;
        }
        model.set("kinds", on.length === all.length ? [] : on);
        model.save_changes();
      });
      kindBoxes.append(h("label", { class: KIND_CLASS[kind] || "" }, box, kind));
    }
  }

  function drawHeader() {
    title.textContent = `events · ${model.get("tenant")}`;
    const s = model.get("status");
    status.textContent = s;
    status.className = `status s-${s}`;
    pause.textContent = stopped() ? "Restart" : model.get("paused") ? "Resume" : "Pause";
    if (document.activeElement !== exec) exec.value = model.get("execution_id");
    const pending = model.get("pending");
    counts.textContent = `${model.get("shown")} shown · ${model.get("received")} received` +
      (model.get("dropped") ? ` · ${model.get("dropped")} dropped` : "") +
      (pending ? ` · ${pending} waiting` : "");
    // A fatal error, else the latest notice of the reader (an outage it is retrying).
    const message = model.get("error") || model.get("notice");
    error.textContent = message;
    error.style.display = message ? "block" : "none";
  }

  // A click on a row expands it to the whole event (asked from Python: rows carry only
  // what the table shows); a second click folds it.
  function rowOf(ev) {
    return h("tr", { class: `k-${KIND_CLASS[ev.kind] || "log"}`, "data-id": ev.id,
      title: "click: the whole event", onclick: () => toggle(ev.id) },
      h("td", { class: "ts" }, ev.ts),
      h("td", {}, ev.kind),
      h("td", {}, ev.executionId),
      h("td", {}, ev.stepId),
      h("td", { class: "num" }, ev.attempt),
      h("td", { class: "summary" }, ev.summary));
  }

  function toggle(id) {
    const row = body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    const open = row && row.nextElementSibling;
    if (open && open.classList.contains("detail")) {
      open.remove();
      return;
    }
    model.send({ op: "detail", id });
  }

  function showDetail(msg) {
    const row = body.querySelector(`tr[data-id="${CSS.escape(msg.id)}"]`);
    if (!row) return;
    const text = msg.json || "(no longer in the buffer)";
    row.after(h("tr", { class: "detail" }, h("td", { colspan: "6" }, h("pre", {}, text))));
  }

  // Python sends changes, not the whole buffer: "add" (new rows, oldest first, and how many
  // rows to keep) per batch, "reset" (every row) on a filter change, a resume, or on request.
  // Newest first on screen, so new rows go on top and the oldest leave at the bottom.
  function onMessage(msg) {
    if (msg.op === "detail") {
      showDetail(msg);
      return;
    }
    if (msg.op === "reset") {
      body.replaceChildren(...msg.rows.slice().reverse().map(rowOf));
    } else if (msg.op === "add") {
      const rows = msg.rows.slice(-msg.keep);
      const fresh = document.createDocumentFragment();
      for (let i = rows.length - 1; i >= 0; i--) fresh.append(rowOf(rows[i]));
      body.prepend(fresh);
      const shown = body.querySelectorAll(":scope > tr:not(.detail)");
      for (let i = shown.length - 1; i >= msg.keep; i--) {
        const next = shown[i].nextElementSibling;
        if (next && next.classList.contains("detail")) next.remove(); // its expansion too
        shown[i].remove();
      }
    }
    drawHeader();
  }

  drawKinds();
  drawHeader();
  const handlers = [
    ["msg:custom", onMessage],
    ["change:kinds", drawKinds],
    ["change:status change:paused change:received change:dropped change:pending change:shown " +
      "change:error change:notice " +
      "change:execution_id change:tenant", drawHeader],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);
  model.send({ op: "sync" }); // this view's rows: sent back as one "reset"
  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
  };
}

export default { render };
