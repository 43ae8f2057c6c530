// LineageGraph front-end: the SVG is laid out and rendered in Python (deterministic);
// this module shows it, turns clicks into `selected`, and shows the chosen envelope.

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
    const nodes = model.get("nodes");
    const failed = nodes.filter((n) => n.status === "failed").length;
    head.replaceChildren();
    const title = document.createElement("b");
    title.textContent = `lineage · ${model.get("tenant")}/${model.get("execution_id")}`;
    const info = document.createElement("span");
    info.className = "info";
    info.textContent = ` ${nodes.length} steps${failed ? `, ${failed} failed` : ""} · ${model.get("status")}`;
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

  function drawGraph() {
    // The SVG string is built by Python with every text escaped.
    canvas.innerHTML = model.get("svg");
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

  drawGraph();
  drawPanel();
  const handlers = [
    ["change:svg change:nodes", drawGraph],
    ["change:status change:error change:notice", drawHead],
    ["change:details", drawPanel],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);
  return () => {
    for (const [name, fn] of handlers) model.off(name, fn);
  };
}

export default { render };
