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
  const tools = document.createElement("div");
  tools.className = "tools";
  const search = document.createElement("input");
  search.type = "search";
  search.className = "search";
  search.placeholder = "find step";
  const found = document.createElement("span");
  found.className = "found";
  tools.append(search, found);
  for (const [label, title, fn] of [
    ["fit", "show the whole graph (labels stay readable)", () => fit()],
    ["+", "zoom in", () => zoomBy(1.25)],
    ["\u2212", "zoom out", () => zoomBy(0.8)],
  ]) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.title = title;
    b.className = `zoom z-${label === "fit" ? "fit" : label === "+" ? "in" : "out"}`;
    b.addEventListener("click", fn);
    tools.append(b);
  }
  const flip = document.createElement("button");
  flip.type = "button";
  flip.className = "direction";
  flip.addEventListener("click", () => {
    view.fitted = true; // a new layout: show it whole
    model.set("direction", model.get("direction") === "LR" ? "TB" : "LR");
    model.save_changes();
  });
  const drawFlip = () => {
    flip.textContent = model.get("direction") === "LR" ? "top to bottom" : "left to right";
  };
  drawFlip();
  tools.append(flip);
  el.append(head, tools, canvas, panel);

  // -- pan and zoom: the SVG keeps its drawing; the view is its viewBox. Labels never get
  // smaller than MIN_SCALE of their drawn size (12 px -> 10 px): a wide graph is panned
  // instead of shrunk to unreadable text.
  const MIN_SCALE = 0.85;
  const MAX_SCALE = 3;
  const view = { x: 0, y: 0, scale: 1, fitted: true };
  let drag = null;

  function drawing() {
    const svg = canvas.querySelector("svg");
    if (!svg) return null;
    return { svg, w: +svg.getAttribute("width"), h: +svg.getAttribute("height") };
  }

  function apply() {
    const d = drawing();
    if (!d) return;
    const cw = Math.max(canvas.clientWidth, 50);
    const ch = Math.min(Math.max(d.h * view.scale, 60), 560);
    canvas.style.height = `${Math.ceil(ch)}px`;
    d.svg.style.width = "100%";
    d.svg.style.maxWidth = "none";
    d.svg.style.height = `${Math.ceil(ch)}px`;
    d.svg.setAttribute("viewBox", `${view.x} ${view.y} ${cw / view.scale} ${ch / view.scale}`);
    canvas.dataset.scale = view.scale.toFixed(3);
  }

  function fit() {
    const d = drawing();
    if (!d) return;
    const cw = Math.max(canvas.clientWidth, 50);
    view.scale = Math.max(Math.min(1, cw / d.w, 560 / d.h), MIN_SCALE);
    view.x = 0;
    view.y = 0;
    view.fitted = true;
    apply();
  }

  function zoomBy(factor, cx, cy) {
    const d = drawing();
    if (!d) return;
    const rect = canvas.getBoundingClientRect();
    const px = cx === undefined ? rect.width / 2 : cx - rect.left;
    const py = cy === undefined ? rect.height / 2 : cy - rect.top;
    const next = Math.min(Math.max(view.scale * factor, MIN_SCALE / 2), MAX_SCALE);
    // the point under the cursor stays put
    view.x += px / view.scale - px / next;
    view.y += py / view.scale - py / next;
    view.scale = next;
    view.fitted = false;
    apply();
  }

  function centreOn(step) {
    const node = canvas.querySelector(`g[data-step="${CSS.escape(step)}"] rect`);
    if (!node) return;
    const x = +node.getAttribute("x");
    const y = +node.getAttribute("y");
    view.scale = Math.max(view.scale, 1);
    view.x = x + 78 - canvas.clientWidth / 2 / view.scale;
    view.y = y + 27 - canvas.clientHeight / 2 / view.scale;
    view.fitted = false;
    apply();
  }

  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX, e.clientY);
  }, { passive: false });
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false };
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag || e.buttons !== 1) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (!drag.moved) return;
    view.x = drag.vx - dx / view.scale;
    view.y = drag.vy - dy / view.scale;
    view.fitted = false;
    apply();
  });
  canvas.addEventListener("pointerup", () => {
    setTimeout(() => { drag = null; }, 0); // the click after a drag is not a selection
  });

  // -- upstream and downstream paths of a node (from the edges' data-from / data-to)
  function highlight(step) {
    const svg = canvas.querySelector("svg");
    if (!svg) return;
    const edges = [...svg.querySelectorAll("path.execctx-edge")];
    const lit = new Set(step ? [step] : []);
    const litEdges = new Set();
    for (const [from, to] of [["data-to", "data-from"], ["data-from", "data-to"]]) {
      const todo = step ? [step] : [];
      while (todo.length) {
        const at = todo.pop();
        for (const edge of edges) {
          if (edge.getAttribute(from) !== at) continue;
          litEdges.add(edge);
          const next = edge.getAttribute(to);
          if (!lit.has(next)) {
            lit.add(next);
            todo.push(next);
          }
        }
      }
    }
    svg.classList.toggle("highlighting", Boolean(step));
    for (const g of svg.querySelectorAll("g[data-step]")) {
      g.classList.toggle("hl", lit.has(g.getAttribute("data-step")));
    }
    for (const edge of edges) edge.classList.toggle("hl", litEdges.has(edge));
  }

  canvas.addEventListener("mouseover", (e) => {
    const node = e.target.closest("[data-step]");
    if (node) highlight(node.getAttribute("data-step"));
  });
  canvas.addEventListener("mouseleave", () => highlight(model.get("selected")));

  search.addEventListener("input", () => find(false));
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") find(true);
  });
  function find(jump) {
    const text = search.value.trim().toLowerCase();
    const nodes = [...canvas.querySelectorAll("g[data-step]")];
    const hits = nodes.filter((g) => text && g.getAttribute("data-step").toLowerCase().includes(text));
    for (const g of nodes) g.classList.toggle("match", hits.includes(g));
    found.textContent = text ? `${hits.length} found` : "";
    if (jump && hits.length) centreOn(hits[0].getAttribute("data-step"));
  }

  canvas.addEventListener("click", (e) => {
    if (drag && drag.moved) return;
    const node = e.target.closest("[data-step]");
    const step = node ? node.getAttribute("data-step") : "";
    model.set("selected", step === model.get("selected") ? "" : step);
    model.save_changes();
    highlight(model.get("selected"));
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
      if (msg.op === "reset") {
        canvas.innerHTML = msg.svg;
        if (view.fitted) fit();
        else apply();
        highlight(model.get("selected"));
        find(false);
      } else model.send({ op: "sync" }); // a patch before any drawing: ask for all of it
      drawHead();
      return;
    }
    if (msg.width) {
      svg.setAttribute("width", msg.width);
      svg.setAttribute("height", msg.height);
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
    if (view.fitted && msg.width) fit();
    else apply();
    highlight(model.get("selected"));
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
    if (d.load) {
      // the magic that loads this step into a variable, to copy into a cell
      const line = document.createElement("div");
      line.className = "load";
      const code = document.createElement("code");
      code.textContent = d.load;
      const copy = document.createElement("button");
      copy.type = "button";
      copy.textContent = "copy";
      copy.addEventListener("click", () => {
        if (navigator.clipboard) navigator.clipboard.writeText(d.load).catch(() => {});
        const range = document.createRange();
        range.selectNodeContents(code);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      });
      line.append("load it: ", code, " ", copy);
      panel.prepend(line);
    }
  }

  drawHead();
  drawPanel();
  const resize = new ResizeObserver(() => (view.fitted ? fit() : apply()));
  resize.observe(canvas);
  const handlers = [
    ["msg:custom", onMessage],
    ["change:status change:error change:notice change:steps change:failed", drawHead],
    ["change:details", drawPanel],
    ["change:direction", drawFlip],
  ];
  for (const [name, fn] of handlers) model.on(name, fn);
  model.send({ op: "sync" }); // this view's drawing: sent back as one "reset"
  return () => {
    resize.disconnect();
    for (const [name, fn] of handlers) model.off(name, fn);
  };
}

export default { render };
