// StreamMonitor front-end: Python renders the tables (every text escaped); this module
// shows them, turns the replay/remove buttons into requests, and shows the confirm step.

function render({ model, el }) {
  el.classList.add("execctx-monitor");
  const bar = document.createElement("div");
  bar.className = "bar";
  const body = document.createElement("div");
  body.className = "body";
  const ask = document.createElement("div");
  ask.className = "ask";
  el.append(bar, ask, body);

  body.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-op]");
    if (!button) return;
    const d = button.dataset;
    model.send({ op: d.op, id: d.id, group: d.group, consumer: d.consumer });
  });

  function drawBar() {
    bar.replaceChildren();
    const title = document.createElement("b");
    title.textContent = `consumer groups · ${model.get("tenant")}`;
    const status = document.createElement("span");
    status.className = `status s-${model.get("status")}`;
    status.textContent = model.get("status");
    const mode = document.createElement("span");
    mode.className = "mode";
    mode.textContent = model.get("actions") ? "actions on" : "read-only";
    bar.append(title, status, mode);
    for (const name of ["error", "result"]) {
      const text = model.get(name);
      if (text) {
        const line = document.createElement("div");
        line.className = name;
        line.textContent = text;
        bar.append(line);
      }
    }
  }

  function drawAsk() {
    ask.replaceChildren();
    const question = model.get("confirm");
    ask.style.display = question ? "block" : "none";
    if (!question) return;
    const text = document.createElement("span");
    text.textContent = question + " ";
    const yes = document.createElement("button");
    yes.className = "confirm";
    yes.textContent = "Confirm";
    yes.addEventListener("click", () => model.send({ op: "confirm" }));
    const no = document.createElement("button");
    no.className = "cancel";
    no.textContent = "Cancel";
    no.addEventListener("click", () => model.send({ op: "cancel" }));
    ask.append(text, yes, no);
  }

  function drawBody() {
    body.innerHTML = model.get("html"); // status_html output: escaped by Python
  }

  drawBar();
  drawAsk();
  drawBody();
  const handlers = [
    ["change:status change:error change:result change:actions", drawBar],
    ["change:confirm", drawAsk],
    ["change:html", drawBody],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);
  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
  };
}

export default { render };
