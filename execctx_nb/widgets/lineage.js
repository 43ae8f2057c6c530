// LineageGraph front-end: the SVG is laid out and rendered in Python (deterministic);
// this module shows it, turns clicks into `selected`, and shows the chosen envelope.
// Python sends the whole drawing once ("reset": on request, or after a full layout) and
// then changes ("patch": new or changed nodes, new edges, the new size), so a live graph
// of n steps costs O(n) to draw over a run instead of O(n^2).

function render({ model, el }) {
  el.classList.add("execctx-lineage-widget");
  const head = document.createElement("div");
  head.className = "head";
  const canvas = document.createElement("div");
  canvas.className = "canvas";
  const panel = document.createElement("div");
  panel.className = "panel";
  el.append(head, canvas, panel);

  canvas.addEventListener("click", (e) => {
    const node = e.target.closest("[data-step]");
    const step = node ? node.getAttribute("data-step") : "";
    model.set("selected", step === model.get("selected") ? "" : step);
    model.save_changes();
  });

  function drawHead() {
    const steps = model.get("steps");
    const failed = model.get("failed");
    head.replaceChildren();
    const title = document.createElement("b");
    title.textContent = `lineage · ${model.get("tenant")}/${model.get("execution_id")}`;
    const info = document.createElement("span");
    info.className = "info";
    info.textContent = ` ${steps} steps${failed ? `, ${failed} failed` : ""} · ${model.get("status")}`;
    head.append(title, info);
    const colours = model.get("colours");
    for (const status of ["success", "failed", "running", "pending", "external"]) {
      const item = document.createElement("span");
      item.className = "legend";
      const dot = document.createElement("i");
      dot.style.background = colours[status][0];
      dot.style.borderColor = colours[status][1];
      item.append(dot, status);
      head.append(item);
    }
    const message = model.get("error") || model.get("notice");
    if (message) {
      const err = document.createElement("div");
      err.className = "error";
      err.textContent = message;
      head.append(err);
    }
  }

  // Every SVG string is built by Python with every text escaped.
  function onMessage(msg) {
    const svg = canvas.querySelector("svg");
    if (msg.op === "reset" || !svg) {
      if (msg.op === "reset") canvas.innerHTML = msg.svg;
      else model.send({ op: "sync" }); // a patch before any drawing: ask for all of it
      drawHead();
      return;
    }
    if (msg.width) {
      svg.setAttribute("width", msg.width);
      svg.setAttribute("height", msg.height);
      svg.setAttribute("viewBox", `0 0 ${msg.width} ${msg.height}`);
      svg.style.maxWidth = `${msg.width}px`;
      svg.querySelector(":scope > title").textContent = msg.title;
      const empty = svg.querySelector(":scope > text");
      if (empty) empty.remove(); // "no steps yet"
    }
    // Edges go under the nodes: before the first node.
    const firstNode = svg.querySelector(":scope > g[data-step]");
    for (const edge of msg.edges) {
      if (firstNode) firstNode.insertAdjacentHTML("beforebegin", edge);
      else svg.insertAdjacentHTML("beforeend", edge);
    }
    for (const [step, markup] of Object.entries(msg.nodes)) {
      const old = svg.querySelector(`:scope > g[data-step="${CSS.escape(step)}"]`);
      if (old) old.outerHTML = markup;
      else svg.insertAdjacentHTML("beforeend", markup);
    }
    drawHead();
  }

  function drawPanel() {
    const d = model.get("details");
    if (!d || !d.stepId) {
      panel.replaceChildren();
      panel.style.display = "none";
      return;
    }
    panel.style.display = "block";
    if (d.html) {
      panel.innerHTML = d.html; // envelope_html output: escaped by Python
    } else {
      panel.textContent = `${d.stepId}: ${d.caption || "no envelope"}`;
    }
  }

  drawHead();
  drawPanel();
  const handlers = [
    ["msg:custom", onMessage],
    ["change:status change:error change:notice change:steps change:failed", drawHead],
    ["change:details", drawPanel],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);
  model.send({ op: "sync" }); // this view's drawing: sent back as one "reset"
  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
  };
}

export default { render };
