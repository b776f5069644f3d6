/* The lesson page's interactive panel: sliders for η, the momentum and the optimizer, the start
 * dragged on the plot, and the run drawn again at every change. Its numbers come from
 * window.deriveDescent (descent.js) and the lesson's own functions; this file only shows them.
 */
(function () {
  "use strict";
  const root = document.getElementById("derive-try");
  const data = JSON.parse(document.getElementById("derive-try-data").textContent);
  const descent = window.deriveDescent;
  const words = data.words;
  const problem = {
    params: data.params,
    start: data.start,
    steps: data.steps,
    scalar: data.scalar,
    columns: data.columns,
    landscape: data.landscape,
    functions: window.deriveLessonFunctions(descent.runtime.py, descent.runtime.np),
  };
  const k = data.params.length;
  const SVG = "http://www.w3.org/2000/svg";
  const HEAD_ROWS = 8, TAIL_ROWS = 3; // as the lesson's step table: first rows, …, last rows

  // -- the API: runs as the JSON trace holds them ---------------------------------------------

  const finite = (x) => (Number.isFinite(x) ? x : null);
  const byName = (values) => Object.fromEntries(data.params.map((n, j) => [n, finite(values[j])]));

  function asTrace(entries) {
    return entries.map((e) => ({
      t: e.t, params: byName(e.params), loss: finite(e.loss), grad: byName(e.grad), lr: e.lr,
    }));
  }

  function fromTrace(run) {
    const values = (o) => data.params.map((n) => (o[n] === null ? NaN : o[n]));
    return run.map((e) => ({ t: e.t, params: values(e.params), loss: e.loss === null ? NaN : e.loss,
      grad: e.grad ? values(e.grad) : data.params.map(() => 0) }));
  }

  window.deriveLesson = {
    /* {optimizer: "sgd"|"adam", lr, momentum, nesterov, betas, start: {w: 0}, steps} →
     * [{t, params: {w: …}, loss, grad: {w: …}, lr}, …]: steps + 1 entries, as `derive descend
     * --json` writes its "steps" (non-finite numbers as null; a diverged run ends early). */
    run: (settings) => asTrace(descent.run(problem, settings || {})),
    /* the shape word of the facts stage: monotone, overshoots, oscillating, cycle, diverges,
     * stationary_start */
    behaviour: (run) => descent.facts(problem, fromTrace(run)).shape,
    /* the facts behind it: shape, converged, converged_at, crossings, loss_increases, period */
    facts: (run) => {
      const f = descent.facts(problem, fromTrace(run));
      return { shape: f.shape, converged: f.converged, converged_at: f.converged_at,
        crossings: f.crossings, loss_increases: f.loss_increases, period: f.period,
        unbounded_below: f.unbounded_below };
    },
  };

  // -- the settings ----------------------------------------------------------------------------

  const rates = data.rates;
  const lessonSettings = () => ({
    optimizer: data.optimizer, lr: data.lr, momentum: data.momentum, beta1: data.beta1,
    start: data.start.slice(),
    steps: data.steps,
  });
  let settings = lessonSettings();

  function runSettings() {
    const s = settings;
    const common = { lr: s.lr, steps: s.steps, start: byName(s.start) };
    if (s.optimizer === "adam") return { optimizer: "adam", betas: [s.beta1, 0.999], ...common };
    if (s.optimizer === "sgd") return { optimizer: "sgd", ...common };
    return { optimizer: "sgd", momentum: s.momentum, nesterov: s.optimizer === "nesterov", ...common };
  }

  // -- numbers as the lesson prints them -------------------------------------------------------

  const SUPERSCRIPT = { "-": "⁻", "+": "", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶",
    7: "⁷", 8: "⁸", 9: "⁹" };

  function typeset(text) {
    const [mantissa, exponent] = text.split("e");
    let shown = mantissa;
    if (exponent !== undefined) {
      const power = "10" + [...String(Number(exponent))].map((c) => SUPERSCRIPT[c]).join("");
      shown = mantissa === "1" ? power : mantissa === "-1" ? "-" + power : `${mantissa}×${power}`;
    }
    return shown.replace(/-/g, "−");
  }

  /* Python's f"{x:.6g}" without trailing zeros, as derive's `number` (3 digits on axes). */
  function sixDigits(x, digits = 6) {
    if (Number.isNaN(x)) return words.not_a_number;
    if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
    if (x === 0) return "0";
    const exponent = Number(x.toExponential(digits - 1).split("e")[1]);
    let text;
    if (exponent < -4 || exponent >= digits) {
      const [m, e] = x.toExponential(digits - 1).split("e");
      text = `${m.includes(".") ? m.replace(/\.?0+$/, "") : m}e${e}`;
    } else {
      text = x.toFixed(Math.max(0, digits - 1 - exponent));
      if (text.includes(".")) text = text.replace(/\.?0+$/, "");
    }
    return typeset(text);
  }

  /* Every digit: the shortest text that reads back as the same double (Python's repr). */
  function allDigits(x) {
    if (Number.isNaN(x)) return words.not_a_number;
    if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
    return typeset(String(x));
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => values[key]);
  }

  // -- the controls ----------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const lrSlider = $("derive-try-lr");
  const lrBox = $("derive-try-lr-value");
  const momentumSlider = $("derive-try-momentum");
  const momentumLabel = $("derive-try-momentum-label");
  const momentumShown = $("derive-try-momentum-shown");
  const stepsBox = $("derive-try-steps");
  const digitsBox = $("derive-try-digits");
  const startBoxes = data.params.map((_, j) => $(`derive-try-start-${j}`));
  const optimizerRadios = [...root.querySelectorAll('input[name="derive-try-optimizer"]')];

  lrSlider.max = String(rates.length - 1);
  stepsBox.max = String(data.maxSteps);
  if (data.view) startBoxes.forEach((box, j) => (box.step = String(data.view.snap[j])));

  function nearestRate(lr) {
    let best = 0;
    rates.forEach((r, i) => {
      if (Math.abs(Math.log(r / lr)) < Math.abs(Math.log(rates[best] / lr))) best = i;
    });
    return best;
  }

  function showSettings() {
    const s = settings;
    optimizerRadios.forEach((r) => (r.checked = r.value === s.optimizer));
    lrSlider.value = String(nearestRate(s.lr));
    lrSlider.setAttribute("aria-valuetext", `η = ${s.lr}`);
    if (document.activeElement !== lrBox) lrBox.value = String(s.lr);
    const adam = s.optimizer === "adam";
    const value = adam ? s.beta1 : s.momentum;
    momentumSlider.disabled = s.optimizer === "sgd";
    momentumSlider.min = s.optimizer === "nesterov" ? "1" : "0";
    momentumSlider.value = String(Math.round(value * 100));
    momentumLabel.textContent = adam ? words.beta1 : words.momentum;
    momentumShown.textContent = s.optimizer === "sgd" ? words.momentum_off : String(value);
    momentumSlider.setAttribute("aria-valuetext", String(value));
    if (document.activeElement !== stepsBox) stepsBox.value = String(s.steps);
    startBoxes.forEach((box, j) => {
      if (document.activeElement !== box) box.value = String(s.start[j]);
    });
  }

  function marks() {
    const holder = $("derive-try-marks");
    if (!data.thresholds.length) return;
    const names = [words.low, words.high];
    data.thresholds.forEach((value, j) => {
      const mark = document.createElement("span");
      mark.className = j === 0 ? "try-mark try-mark-low" : "try-mark try-mark-high";
      // the thumb's centre runs from half a thumb in from each end of the track
      const share = rates.indexOf(value) / (rates.length - 1);
      mark.style.left = `calc(${share} * (100% - 1rem) + 0.5rem)`;
      mark.textContent = names[j];
      mark.title = `${names[j]} = ${value}`;
      holder.appendChild(mark);
    });
  }

  function listen() {
    const changed = (animate) => update(animate);
    optimizerRadios.forEach((radio) => radio.addEventListener("change", () => {
      settings.optimizer = radio.value;
      if (radio.value === "nesterov" && settings.momentum === 0) settings.momentum = 0.01;
      changed(true);
    }));
    lrSlider.addEventListener("input", () => {
      settings.lr = rates[Number(lrSlider.value)];
      changed(false);
    });
    lrSlider.addEventListener("change", () => changed(true));
    lrBox.addEventListener("input", () => {
      const value = Number(lrBox.value);
      if (lrBox.value.trim() !== "" && value > 0 && Number.isFinite(value)) {
        settings.lr = value;
        changed(false);
      }
    });
    momentumSlider.addEventListener("input", () => {
      const value = Number((Number(momentumSlider.value) / 100).toFixed(2));
      if (settings.optimizer === "adam") settings.beta1 = value;
      else settings.momentum = value;
      changed(false);
    });
    momentumSlider.addEventListener("change", () => changed(true));
    stepsBox.addEventListener("input", () => {
      const value = Number(stepsBox.value);
      if (Number.isInteger(value) && value >= 0 && value <= data.maxSteps) {
        settings.steps = value;
        changed(false);
      }
    });
    startBoxes.forEach((box, j) => box.addEventListener("input", () => {
      const value = Number(box.value);
      if (box.value.trim() !== "" && Number.isFinite(value)) {
        settings.start[j] = value;
        changed(false);
      }
    }));
    digitsBox.addEventListener("change", () => changed(false));
    $("derive-try-reset").addEventListener("click", () => {
      settings = lessonSettings();
      changed(true);
    });
  }

  // -- the plots -------------------------------------------------------------------------------

  function element(name, attributes, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  const round = (x) => Math.round(x * 10) / 10;
  const clamp = (x, low, high) => Math.min(high, Math.max(low, x));

  /* The plot's frame in CSS pixels: its box in parameter (or loss) units mapped onto it. */
  function frame(svg, height, low, high, yLow, yHigh) {
    const width = Math.max(240, Math.min(svg.parentNode.clientWidth || root.clientWidth, root.clientWidth));
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const pad = { left: 52, right: 12, top: 10, bottom: 28 };
    const x = (v) => pad.left + ((v - low) / (high - low)) * (width - pad.left - pad.right);
    const y = (v) => height - pad.bottom - ((v - yLow) / (yHigh - yLow)) * (height - pad.top - pad.bottom);
    const back = {
      x: (px) => low + ((px - pad.left) / (width - pad.left - pad.right)) * (high - low),
      y: (py) => yLow + ((height - pad.bottom - py) / (height - pad.top - pad.bottom)) * (yHigh - yLow),
    };
    return { width, height, pad, x, y, back };
  }

  const extra = data.columns.length
    ? [...data.columns.map((c) => Float64Array.from(c)), data.columns[0].length] : [];

  function loss(point) {
    return Number(problem.functions.array(...point, ...extra)[0]);
  }

  let landscapeCache = null;

  /* One parameter: the curve L(w) sampled across the box. Two: contour lines by marching
   * squares on a grid, at levels spaced geometrically above the lowest value seen. */
  function landscapeShapes() {
    if (landscapeCache) return landscapeCache;
    const { low, high } = data.view;
    if (k === 1) {
      const xs = Array.from({ length: 241 }, (_, i) => low[0] + ((high[0] - low[0]) * i) / 240);
      const ys = xs.map((x) => loss([x]));
      const shown = ys.filter(Number.isFinite);
      landscapeCache = { xs, ys, yLow: Math.min(...shown), yHigh: Math.max(...shown) };
      return landscapeCache;
    }
    const size = 80;
    const grid = [];
    for (let r = 0; r <= size; r++) {
      const row = [];
      const b = low[1] + ((high[1] - low[1]) * r) / size;
      for (let c = 0; c <= size; c++) row.push(loss([low[0] + ((high[0] - low[0]) * c) / size, b]));
      grid.push(row);
    }
    // levels at quantiles of the values seen, denser toward the lowest: the lines spread over
    // the plot whatever the loss's scale (a narrow valley does not take them all)
    const values = grid.flat().filter(Number.isFinite).sort((a, b) => a - b);
    const levels = [];
    for (let j = 14; j >= 1 && values.length; j--) {
      const level = values[Math.floor(Math.pow(j / 15, 2) * (values.length - 1))];
      if (!levels.length || level < levels[levels.length - 1]) levels.push(level);
    }
    landscapeCache = { grid, size, levels };
    return landscapeCache;
  }

  function contours(shapes, f, group) {
    const { grid, size, levels } = shapes;
    const { low, high } = data.view;
    const at = (c, r) => [low[0] + ((high[0] - low[0]) * c) / size, low[1] + ((high[1] - low[1]) * r) / size];
    levels.forEach((level, j) => {
      let d = "";
      for (let r = 0; r < size; r++) {
        for (let c = 0; c < size; c++) {
          const corners = [[c, r], [c + 1, r], [c + 1, r + 1], [c, r + 1]];
          const v = corners.map(([cc, rr]) => grid[rr][cc]);
          if (!v.every(Number.isFinite)) continue;
          const crossing = [];
          for (let e = 0; e < 4; e++) {
            const a = v[e], b = v[(e + 1) % 4];
            if ((a < level) !== (b < level)) {
              const share = (level - a) / (b - a);
              const [c1, r1] = corners[e], [c2, r2] = corners[(e + 1) % 4];
              const [px, py] = at(c1 + share * (c2 - c1), r1 + share * (r2 - r1));
              crossing.push([f.x(px), f.y(py)]);
            }
          }
          for (let e = 0; e + 1 < crossing.length; e += 2) {
            d += `M${round(crossing[e][0])} ${round(crossing[e][1])}L${round(crossing[e + 1][0])} ${round(crossing[e + 1][1])}`;
          }
        }
      }
      if (d) element("path", { d, class: "try-contour", style: `opacity:${0.35 + (0.55 * j) / levels.length}` }, group);
    });
  }

  /* Two parameters: one unit the same length along both axes when the box allows (the
   * gradient then stands at right angles to the contour lines, as it does). */
  function squareHeight(svg, low, high) {
    const inner = Math.max(240, root.clientWidth < 640 ? root.clientWidth : svg.parentNode.clientWidth) - 64;
    // on a phone the plot stays in view above the controls: at most 40% of the screen
    const tallest = root.clientWidth < 640 ? Math.max(200, window.innerHeight * 0.4 - 38) : 460;
    return Math.round(clamp((inner * (high[1] - low[1])) / (high[0] - low[0]), 200, tallest) + 38);
  }

  function snapped(value, j) {
    const step = data.view.snap[j];
    const places = Math.max(0, -Math.floor(Math.log10(step)));
    const inside = clamp(value, data.view.low[j], data.view.high[j]);
    return Number((Math.round(inside / step) * step).toFixed(places));
  }

  function drawLandscape(entries, animate) {
    const svg = $("derive-try-landscape");
    svg.replaceChildren();
    if (!data.view) {
      svg.style.display = "none";
      return false;
    }
    const { low, high } = data.view;
    const shapes = landscapeShapes();
    const f = k === 1
      ? frame(svg, 260, low[0], high[0], shapes.yLow - 0.05 * (shapes.yHigh - shapes.yLow), shapes.yHigh)
      : frame(svg, squareHeight(svg, low, high), low[0], high[0], low[1], high[1]);
    const clip = element("clipPath", { id: "derive-try-clip" }, element("defs", {}, svg));
    element("rect", { x: f.pad.left, y: f.pad.top, width: f.width - f.pad.left - f.pad.right,
      height: f.height - f.pad.top - f.pad.bottom }, clip);
    const plot = element("g", { "clip-path": "url(#derive-try-clip)" }, svg);
    element("rect", { x: f.pad.left, y: f.pad.top, width: f.width - f.pad.left - f.pad.right,
      height: f.height - f.pad.top - f.pad.bottom, class: "try-frame" }, svg);
    axes(svg, f, [low[0], high[0]], k === 1 ? [shapes.yLow, shapes.yHigh] : [low[1], high[1]],
      data.symbols[0], k === 1 ? words.loss_axis : data.symbols[1]);
    if (k === 1) {
      const d = shapes.xs.map((x, i) => (Number.isFinite(shapes.ys[i])
        ? `${i && Number.isFinite(shapes.ys[i - 1]) ? "L" : "M"}${round(f.x(x))} ${round(f.y(shapes.ys[i]))}` : "")).join("");
      element("path", { d, class: "try-curve" }, plot);
    } else {
      contours(shapes, f, plot);
    }
    for (const point of data.marked) {
      const [px, py] = k === 1 ? [point[0], loss(point)] : point;
      element("path", { d: `M${round(f.x(px)) - 5} ${round(f.y(py)) - 5}l10 10m0 -10l-10 10`, class: "try-minimum" }, plot);
    }
    const place = (p, L) => (k === 1 ? [f.x(p[0]), f.y(L)] : [f.x(p[0]), f.y(p[1])]);
    const drawn = entries.filter((e) => e.params.every(Number.isFinite) && (k > 1 || Number.isFinite(e.loss)));
    let outside = false;
    const points = drawn.map((e) => {
      const [px, py] = place(e.params, e.loss);
      if (px < f.pad.left || px > f.width - f.pad.right || py < f.pad.top || py > f.height - f.pad.bottom) outside = true;
      return [clamp(px, -1e5, 1e5), clamp(py, -1e5, 1e5)];
    });
    if (points.length > 1) {
      const d = points.map(([px, py], i) => `${i ? "L" : "M"}${round(px)} ${round(py)}`).join("");
      element("path", { d, class: animate ? "try-path try-animate" : "try-path", pathLength: 1 }, plot);
    }
    if (points.length <= 80) {
      points.slice(1).forEach(([px, py]) => element("circle", { cx: round(px), cy: round(py), r: 2.5, class: "try-dot" }, plot));
    }
    startHandle(svg, f, place);
    return outside;
  }

  function startHandle(svg, f, place) {
    const start = settings.start;
    const [sx, sy] = place(start, loss(start));
    const handle = element("g", { class: "try-handle", tabindex: 0, role: "button",
      "aria-label": fill(words.start_handle, { values: startText() }) }, svg);
    element("circle", { cx: round(sx), cy: round(sy), r: 18, class: "try-handle-area" }, handle);
    element("circle", { cx: round(sx), cy: round(sy), r: 7, class: "try-handle-dot" }, handle);
    const moveTo = (event) => {
      const box = svg.getBoundingClientRect();
      const px = event.clientX - box.left, py = event.clientY - box.top;
      settings.start[0] = snapped(f.back.x(px), 0);
      if (k === 2) settings.start[1] = snapped(f.back.y(py), 1);
      update(false, true);
    };
    svg.onpointerdown = (event) => {
      if (event.button !== 0) return;
      dragging = true;
      svg.setPointerCapture(event.pointerId);
      moveTo(event);
    };
    svg.onpointermove = (event) => { if (dragging) moveTo(event); };
    svg.onpointerup = svg.onpointercancel = (event) => {
      if (!dragging) return;
      dragging = false;
      svg.releasePointerCapture(event.pointerId);
      update(true);
    };
    handle.onkeydown = (event) => {
      const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowDown: [1, -1], ArrowUp: [1, 1] };
      const move = moves[event.key];
      if (!move || (k === 1 && move[0] === 1)) return;
      event.preventDefault();
      const [j, direction] = move;
      const step = data.view.snap[j] * (event.shiftKey ? 10 : 1);
      settings.start[j] = snapped(settings.start[j] + direction * step, j);
      update(false, true);
      $("derive-try-landscape").querySelector(".try-handle").focus();
    };
  }
  let dragging = false;

  function startText() {
    return data.symbols.map((s, j) => `${s} = ${typeset(String(settings.start[j]))}`).join(", ");
  }

  function axes(svg, f, [xLow, xHigh], [yLow, yHigh], xName, yName) {
    const text = (x, y, content, anchor) => {
      const node = element("text", { x: round(x), y: round(y), "text-anchor": anchor, class: "try-axis" }, svg);
      node.textContent = content;
    };
    const bottom = f.height - f.pad.bottom;
    text(f.pad.left, bottom + 18, sixDigits(xLow, 3), "start");
    text(f.width - f.pad.right, bottom + 18, sixDigits(xHigh, 3), "end");
    text((f.pad.left + f.width - f.pad.right) / 2, bottom + 18, xName, "middle");
    text(f.pad.left - 6, bottom, sixDigits(yLow, 3), "end");
    text(f.pad.left - 6, f.pad.top + 10, sixDigits(yHigh, 3), "end");
    text(f.pad.left - 6, (f.pad.top + bottom) / 2 + 4, yName, "end");
  }

  function drawLosses(entries, animate) {
    const svg = $("derive-try-losses");
    svg.replaceChildren();
    const values = entries.map((e) => e.loss);
    const shown = values.filter(Number.isFinite);
    if (!shown.length) return;
    const lowest = Math.min(...shown);
    // a run that blows up is cut at a few times its first drop, so the start stays readable
    const first = Number.isFinite(values[0]) ? values[0] : lowest;
    const highest = Math.min(Math.max(...shown), first + 3 * Math.max(first - lowest, Math.abs(first) * 0.1));
    const top = highest > lowest ? highest : lowest + 1;
    const f = frame(svg, 180, 0, Math.max(1, entries.length - 1), lowest, top);
    element("rect", { x: f.pad.left, y: f.pad.top, width: f.width - f.pad.left - f.pad.right,
      height: f.height - f.pad.top - f.pad.bottom, class: "try-frame" }, svg);
    axes(svg, f, [0, Math.max(1, entries.length - 1)], [lowest, top], words.step_axis, words.loss_axis);
    const d = values.map((v, t) => (Number.isFinite(v)
      ? `${t ? "L" : "M"}${round(f.x(t))} ${round(clamp(f.y(v), f.pad.top - 4, f.height))}` : "")).join("");
    element("path", { d, class: animate ? "try-path try-animate" : "try-path", pathLength: 1 }, svg);
  }

  // -- the table and the words -----------------------------------------------------------------

  function drawTable(entries, facts) {
    const table = $("derive-try-table");
    const head = table.tHead.rows[0];
    if (!head.cells.length) {
      const cells = [words.step, ...data.symbols, words.loss,
        ...data.symbols.map((s) => fill(words.gradient_header, { p: s }))];
      cells.forEach((c) => {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = c;
        head.appendChild(th);
      });
    }
    const every = digitsBox.checked;
    const r = facts.resolution;
    const chop = (x, floor) => (Number.isFinite(x) && Math.abs(x) <= floor ? 0 : x);
    const body = table.tBodies[0];
    body.replaceChildren();
    let shown = entries.map((_, t) => t);
    if (shown.length > HEAD_ROWS + TAIL_ROWS + 1) {
      shown = [...shown.slice(0, HEAD_ROWS), null, ...shown.slice(-TAIL_ROWS)];
    }
    for (const t of shown) {
      const row = body.insertRow();
      if (t === null) {
        for (let c = 0; c < 2 + 2 * k; c++) row.insertCell().textContent = "…";
        continue;
      }
      const e = entries[t];
      const slope = Math.sqrt(e.grad.reduce((s, g) => s + g * g, 0));
      const cells = [
        [e.t, null],
        ...e.params.map((p) => [p, r.params]),
        [e.loss, r.lossNoise(0, 0, Number.isFinite(slope) ? slope : 0)],
        ...e.grad.map((g) => [g, r.gradient]),
      ];
      cells.forEach(([value, floor], c) => {
        const cell = row.insertCell();
        if (c === 0) {
          cell.textContent = String(value);
          return;
        }
        cell.dataset.value = String(value);
        cell.textContent = every ? allDigits(value) : sixDigits(chop(value, floor));
      });
    }
  }

  function label(facts) {
    const w = data.behaviour;
    if (facts.shape === "cycle") return w.cycle;
    let text = w[facts.shape];
    if (facts.unbounded_below) text += words.joiner + w.unbounded;
    else if ((facts.shape === "monotone" || facts.shape === "overshoots") && facts.minimiser) {
      text += words.joiner + (facts.converged ? w.converged : w.slow);
    }
    return text;
  }

  function where() {
    const [low, high] = data.thresholds;
    if (low === undefined) return "";
    const lr = settings.lr;
    const values = { lr, low: words.low, high: words.high, lowValue: sixDigits(low), highValue: sixDigits(high) };
    const key = lr < low ? "below" : lr === low ? "at_low" : lr < high ? "between" : lr === high ? "at_high" : "above";
    return fill(words[key], values);
  }

  // -- one update ------------------------------------------------------------------------------

  function update(animate, keepFocus) {
    showSettings();
    const entries = descent.run(problem, runSettings());
    const facts = descent.facts(problem, entries);
    $("derive-try-behaviour").textContent = label(facts);
    $("derive-try-behaviour").dataset.shape = facts.shape;
    $("derive-try-where").textContent = settings.optimizer === "sgd" ? where() : "";
    const outside = drawLandscape(entries, animate && !keepFocus);
    drawLosses(entries, animate && !keepFocus);
    $("derive-try-off").hidden = !outside;
    drawTable(entries, facts);
  }

  /* The panel stands after the section on learning rates, and the contents list it there. */
  function place() {
    const headings = [...document.querySelectorAll("main h2")].filter((h) => !root.contains(h));
    // the lesson numbers its sections ("7. What the learning rate does")
    const rates = headings.find((h) => h.textContent.trim().endsWith(data.after));
    const next = rates && headings[headings.indexOf(rates) + 1];
    if (next) next.parentNode.insertBefore(root, next);
    const link = document.querySelector(`nav.contents a[href="#${rates ? rates.id : ""}"]`);
    const item = document.createElement("li");
    const anchor = document.createElement("a");
    anchor.href = "#derive-try";
    anchor.textContent = $("derive-try-title").textContent;
    item.appendChild(anchor);
    const list = document.querySelector("nav.contents ol");
    if (link && next) link.parentNode.after(item);
    else if (list) list.appendChild(item);
  }

  place();
  marks();
  listen();
  root.hidden = false;
  update(false);
  let width = root.clientWidth;
  new ResizeObserver(() => {
    if (root.clientWidth !== width) {
      width = root.clientWidth;
      update(false);
    }
  }).observe(root);
})();
