// The dashboard's live plots of a 2-D run, drawn on a canvas: a density heatmap, samples over data, and a loss
// chart. A page mounts this script once (st.components.v2; its default export, `install`, makes the drawing
// function `window.funnelkitPlot`); each plot's element carries only a few lines, canvas_plots.py's STUB, which
// calls it with the plot's `data` (a dict made by canvas_plots.py). Streamlit calls that with each new data,
// keeping the same element: the plot is redrawn in place, never blank. (The script itself is not sent with
// every plot of every redraw: Streamlit sends a component's script with each of its messages.) Text takes the
// page's colour and font, so it reads on the light and the dark theme.

// Text sizes at the page's usual 16 px root; a page with larger text (the presentation mode's 19 px) scales
// them and the margins they need (set by each drawing: `scaled`).
const BASE_FONT_PX = 14;
let FONT_PX = BASE_FONT_PX;
let TITLE_PX = 16;
let K = 1;  // FONT_PX / BASE_FONT_PX

function scaled() {
  const root = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  K = Math.max(1, root / 16);
  FONT_PX = Math.round(BASE_FONT_PX * K);
  TITLE_PX = Math.round(16 * K);
}
// plotly's Viridis colour scale, as ten stops between which colours are interpolated
const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 73, 137], [49, 104, 142], [38, 130, 142],
                 [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]];
const DATA_ON_DENSITY = "rgba(239, 85, 59, 0.55)";
const DATA_GREY = "rgba(128, 128, 128, 0.35)";
const MODEL_BLUE = "rgba(99, 110, 250, 0.6)";
const LINE_BLUE = "rgb(99, 110, 250)";
const REFERENCE_RED = "rgb(239, 85, 59)";

function viridisTable(levels) {
  const table = new Uint8ClampedArray((levels + 1) * 3);
  for (let level = 0; level <= levels; level++) {
    const at = (level / levels) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(at), VIRIDIS.length - 2);
    const f = at - i;
    for (let c = 0; c < 3; c++) table[level * 3 + c] = VIRIDIS[i][c] * (1 - f) + VIRIDIS[i + 1][c] * f;
  }
  return table;
}
const COLOURS = viridisTable(255);

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = raw / power;
  return power * (unit < 1.5 ? 1 : unit < 3.5 ? 2 : unit < 7.5 ? 5 : 10);
}

function ticks(low, high, count) {
  const step = niceStep(high - low, count);
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const out = [];
  for (let v = Math.ceil(low / step - 1e-9) * step; v <= high + step * 1e-9; v += step) {
    out.push([v, (Math.abs(v) < step * 1e-6 ? 0 : v).toFixed(digits)]);
  }
  return out;
}

function decodeBytes(text) {
  const bytes = atob(text);
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes.charCodeAt(i);
  return out;
}

// The plot's data with its `arrays` (base64 text of float32 values) as Float32Arrays.
function decoded(data) {
  const out = {...data};
  for (const key of data.arrays || []) out[key] = new Float32Array(decodeBytes(data[key]).buffer);
  return out;
}

// The plot area inside the canvas, and its maps from data to pixels.
function frame(width, height, top, square, extraRight) {
  const left = 56 * K, bottom = 44 * K, right = 12 + extraRight * K;
  let w = width - left - right, h = height - top - bottom;
  let x0 = left, y0 = top;
  if (square) {
    const side = Math.max(40, Math.min(w, h));
    x0 = left + (w - side) / 2;
    w = h = side;
  }
  return {x0, y0, w, h};
}

function scales(box, xr, yr) {
  return {
    x: (v) => box.x0 + ((v - xr[0]) / (xr[1] - xr[0])) * box.w,
    y: (v) => box.y0 + box.h - ((v - yr[0]) / (yr[1] - yr[0])) * box.h,
    fromX: (px) => xr[0] + ((px - box.x0) / box.w) * (xr[1] - xr[0]),
    fromY: (py) => yr[0] + ((box.y0 + box.h - py) / box.h) * (yr[1] - yr[0]),
  };
}

function axes(g, box, s, xr, yr, xLabel, yLabel, ink, font, grid) {
  g.save();
  g.font = `${FONT_PX}px ${font}`;
  g.fillStyle = ink;
  g.strokeStyle = ink;
  g.textAlign = "center";
  g.textBaseline = "top";
  const right = g.canvas.width / (window.devicePixelRatio || 1);
  for (const [v, label] of ticks(xr[0], xr[1], Math.max(3, Math.floor(box.w / 70)))) {
    const x = s.x(v);
    if (grid) { g.globalAlpha = 0.15; g.beginPath(); g.moveTo(x, box.y0); g.lineTo(x, box.y0 + box.h); g.stroke(); }
    g.globalAlpha = 1;
    const half = g.measureText(label).width / 2;  // a label at the edge stays inside the canvas
    g.fillText(label, Math.min(Math.max(x, half + 2), right - half - 2), box.y0 + box.h + 4);
  }
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (const [v, label] of ticks(yr[0], yr[1], Math.max(3, Math.floor(box.h / 50)))) {
    const y = s.y(v);
    if (grid) { g.globalAlpha = 0.15; g.beginPath(); g.moveTo(box.x0, y); g.lineTo(box.x0 + box.w, y); g.stroke(); }
    g.globalAlpha = 1;
    g.fillText(label, box.x0 - 5, y);
  }
  g.textAlign = "center";
  g.textBaseline = "bottom";
  g.fillText(xLabel, box.x0 + box.w / 2, box.y0 + box.h + 42 * K);
  g.translate(box.x0 - 42 * K, box.y0 + box.h / 2);
  g.rotate(-Math.PI / 2);
  g.textBaseline = "bottom";
  g.fillText(yLabel, 0, 0);
  g.restore();
}

// The title, and the legend on its right, or on a row of its own below it where the two would not fit. Returns
// the height they take: the plot starts below it.
function heading(g, width, title, legend, ink, font) {
  g.save();
  g.font = `${FONT_PX}px ${font}`;
  const legendWidth = legend.reduce((w, [label]) => w + g.measureText(label).width + 36, 0);
  g.font = `bold ${TITLE_PX}px ${font}`;
  const below = g.measureText(title).width + 16 + legendWidth > width;
  g.fillStyle = ink;
  g.textBaseline = "middle";
  g.fillText(title, 4, 14 * K);
  g.font = `${FONT_PX}px ${font}`;
  const row = (below ? 36 : 14) * K;
  let x = width - 4;
  g.textAlign = "right";
  for (const [label, colour, dashed] of legend.slice().reverse()) {
    g.fillStyle = ink;
    g.fillText(label, x, row);
    x -= g.measureText(label).width + 6;
    g.strokeStyle = colour;
    g.fillStyle = colour;
    g.lineWidth = 2;
    g.setLineDash(dashed ? [4, 3] : []);
    if (dashed !== undefined) { g.beginPath(); g.moveTo(x - 16, row); g.lineTo(x, row); g.stroke(); }
    else { g.beginPath(); g.arc(x - 5, row, 4, 0, 2 * Math.PI); g.fill(); }
    x -= 30;
  }
  g.restore();
  return (below ? 58 : 36) * K;
}

function dots(g, s, flat, colour, radius) {
  g.fillStyle = colour;
  g.beginPath();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const x = s.x(flat[i]), y = s.y(flat[i + 1]);
    g.moveTo(x + radius, y);
    g.arc(x, y, radius, 0, 2 * Math.PI);
  }
  g.fill();
}

function line(g, s, xs, ys, colour, width, dash) {
  if (!xs.length) return;
  g.save();
  g.strokeStyle = colour;
  g.lineWidth = width;
  g.setLineDash(dash || []);
  g.beginPath();
  xs.forEach((x, i) => (i ? g.lineTo(s.x(x), s.y(ys[i])) : g.moveTo(s.x(x), s.y(ys[i]))));
  g.stroke();
  g.restore();
}

function clipTo(g, box) {
  g.beginPath();
  g.rect(box.x0, box.y0, box.w, box.h);
  g.clip();
}

// Each draw function returns the plot area (for tests and benchmarks: the canvas's data-plot-width and
// data-plot-height) and the text shown on hover at a pixel (null: none).
function drawDensity(g, width, d, ink, font, state) {
  const top = heading(g, width, d.title, d.data.length ? [["data", DATA_ON_DENSITY]] : [], ink, font);
  const box = frame(width, d.height, top, true, 62);
  const r = d.range;
  const s = scales(box, r, r);
  const n = d.size;
  const levels = decodeBytes(d.levels);
  const image = new ImageData(n, n);
  for (let i = 0; i < n; i++) {          // grid row i is x2 = axis[i], drawn bottom to top
    for (let j = 0; j < n; j++) {
      const level = levels[i * n + j], at = ((n - 1 - i) * n + j) * 4;
      image.data[at] = COLOURS[level * 3];
      image.data[at + 1] = COLOURS[level * 3 + 1];
      image.data[at + 2] = COLOURS[level * 3 + 2];
      image.data[at + 3] = 255;
    }
  }
  state.cells.width = n;
  state.cells.height = n;
  state.cells.getContext("2d").putImageData(image, 0, 0);
  g.save();
  g.imageSmoothingEnabled = false;
  g.drawImage(state.cells, box.x0, box.y0, box.w, box.h);
  clipTo(g, box);
  dots(g, s, d.data, DATA_ON_DENSITY, 1.5);
  g.restore();
  // the colour bar: p from 0 to top (and above it, saturated)
  const bar = {x0: box.x0 + box.w + 12, y0: box.y0, w: 12, h: box.h};
  for (let k = 0; k < bar.h; k++) {
    const level = Math.round((1 - k / bar.h) * 255);
    g.fillStyle = `rgb(${COLOURS[level * 3]}, ${COLOURS[level * 3 + 1]}, ${COLOURS[level * 3 + 2]})`;
    g.fillRect(bar.x0, bar.y0 + k, bar.w, 1.5);
  }
  g.save();
  g.fillStyle = ink;
  g.font = `${FONT_PX}px ${font}`;
  g.textBaseline = "middle";
  for (const [v, label] of ticks(0, d.top, 4)) {
    g.fillText(label, bar.x0 + bar.w + 4, bar.y0 + bar.h - (v / d.top) * bar.h);
  }
  g.textBaseline = "bottom";
  g.fillText("p", bar.x0, bar.y0 - 4);
  g.restore();
  axes(g, box, s, r, r, "x₁", "x₂", ink, font, false);
  return [box, (px, py) => {
    const x = s.fromX(px), y = s.fromY(py);
    if (x < r[0] || x > r[1] || y < r[0] || y > r[1]) return null;
    const j = Math.min(n - 1, Math.floor(((x - r[0]) / (r[1] - r[0])) * n));
    const i = Math.min(n - 1, Math.floor(((y - r[0]) / (r[1] - r[0])) * n));
    const level = levels[i * n + j];
    const p = level >= 255 ? `≥ ${d.top.toPrecision(3)}` : `≈ ${((level / 255) * d.top).toPrecision(2)}`;
    return `x₁ = ${x.toFixed(2)}, x₂ = ${y.toFixed(2)}<br>p ${p}`;
  }];
}

function drawSamples(g, width, d, ink, font) {
  const legend = [...(d.data.length ? [["data", DATA_GREY]] : []), ["samples", MODEL_BLUE]];
  const box = frame(width, d.height, heading(g, width, d.title, legend, ink, font), true, 0);
  const r = d.range;
  const s = scales(box, r, r);
  axes(g, box, s, r, r, "x₁", "x₂", ink, font, true);
  g.save();
  clipTo(g, box);
  dots(g, s, d.data, DATA_GREY, 1.5);
  dots(g, s, d.samples, MODEL_BLUE, 1.5);
  g.restore();
  return [box, (px, py) => {
    const x = s.fromX(px), y = s.fromY(py);
    return x < r[0] || x > r[1] || y < r[0] || y > r[1] ? null : `x₁ = ${x.toFixed(2)}, x₂ = ${y.toFixed(2)}`;
  }];
}

function drawLoss(g, width, d, ink, font) {
  const steps = d.steps;
  const legend = steps.length ? [["per step", DATA_GREY, false], [`mean of ${d.window}`, LINE_BLUE, false]] : [];
  const box = frame(width, d.height, heading(g, width, d.title, legend, ink, font), false, 0);
  const xr = steps.length > 1 ? [steps[0], steps[steps.length - 1]] : [0, Math.max(1, steps[0] || 1)];
  const yr = d.y_range || (d.reference !== null ? [d.reference - 0.5, d.reference + 0.5] : [0, 1]);
  const s = scales(box, xr, yr);
  axes(g, box, s, xr, yr, "iteration", "nats", ink, font, true);
  g.save();
  clipTo(g, box);
  line(g, s, steps, d.losses, DATA_GREY, 1);
  line(g, s, d.mean_steps, d.means, LINE_BLUE, 2);
  if (d.reference !== null) {
    line(g, s, xr, [d.reference, d.reference], REFERENCE_RED, 1.5, [5, 4]);
    g.fillStyle = ink;
    g.font = `${FONT_PX}px ${font}`;
    g.textBaseline = "bottom";
    g.fillText(`true density ${d.reference.toFixed(3)}`, box.x0 + 6, s.y(d.reference) - 3);
  }
  g.restore();
  return [box, (px, py) => {
    if (!steps.length || px < box.x0 || px > box.x0 + box.w || py < box.y0 || py > box.y0 + box.h) return null;
    const at = s.fromX(px);
    let i = 0;
    while (i + 1 < d.mean_steps.length && d.mean_steps[i + 1] <= at) i++;
    return `iteration ${Math.round(d.mean_steps[i])}<br>mean of ${d.window}: ${d.means[i].toFixed(3)} nats`;
  }];
}

const DRAW = {density: drawDensity, samples: drawSamples, loss: drawLoss};

function draw(state) {
  const d = decoded(state.data);
  const canvas = state.canvas;
  const width = Math.max(220, Math.floor(state.box.clientWidth || 300));
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(d.height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${d.height}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, d.height);
  scaled();
  state.tip.style.fontSize = `${FONT_PX}px`;
  const style = getComputedStyle(state.box);
  try {
    const [box, hover] = DRAW[d.kind](g, width, d, style.color, style.fontFamily, state);
    state.hover = hover;
    // what tests and benchmarks read: times drawn, the plot area, the text size, the last step of a loss
    canvas.dataset.drawn = String(Number(canvas.dataset.drawn || 0) + 1);
    canvas.dataset.plotWidth = String(Math.round(box.w));
    canvas.dataset.plotHeight = String(Math.round(box.h));
    canvas.dataset.plotLeft = String(box.x0);
    canvas.dataset.plotTop = String(box.y0);
    canvas.dataset.fontPx = String(FONT_PX);
    if (d.kind === "loss") canvas.dataset.lastStep = String(d.steps.length ? d.steps[d.steps.length - 1] : -1);
    canvas.removeAttribute("data-error");
  } catch (error) {
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, d.height);
    g.fillStyle = style.color;
    g.font = `${FONT_PX}px ${style.fontFamily}`;
    g.fillText(`This plot could not be drawn (${error.message}).`, 8, 24);
    canvas.dataset.error = String(error.message);
    state.hover = null;
  }
  canvas.dataset.kind = d.kind;
}

function create(root) {
  const box = document.createElement("div");
  box.style.position = "relative";
  box.style.width = "100%";
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.style.display = "block";
  const tip = document.createElement("div");
  tip.style.cssText = "position:absolute;display:none;pointer-events:none;padding:2px 6px;border-radius:4px;" +
    "background:rgba(40,40,40,0.85);color:white;white-space:nowrap;";
  box.append(canvas, tip);
  root.appendChild(box);
  const state = {box, canvas, tip, cells: document.createElement("canvas"), data: null, hover: null, width: 0};
  canvas.addEventListener("mousemove", (event) => {
    const bounds = canvas.getBoundingClientRect();
    const px = event.clientX - bounds.left, py = event.clientY - bounds.top;
    const text = state.hover ? state.hover(px, py) : null;
    tip.style.display = text ? "block" : "none";
    if (text) {
      tip.innerHTML = text;
      tip.style.left = `${Math.min(px + 12, bounds.width - tip.offsetWidth - 2)}px`;
      tip.style.top = `${py + 12}px`;
    }
  });
  canvas.addEventListener("mouseleave", () => (tip.style.display = "none"));
  const resized = new ResizeObserver(() => {
    if (!box.isConnected) return resized.disconnect();
    const width = Math.floor(box.clientWidth);
    if (state.data && width !== state.width) { state.width = width; draw(state); }
  });
  resized.observe(box);
  return state;
}

// One plot: `component` is what Streamlit gives a component's script, its `data` and `parentElement`.
function render(component) {
  const { data, parentElement } = component;
  if (!data) return;
  const state = parentElement.__funnelkitPlot || (parentElement.__funnelkitPlot = create(parentElement));
  state.data = data;
  state.canvas.setAttribute("aria-label", data.title);
  state.width = Math.floor(state.box.clientWidth);
  draw(state);
}

// Install the drawing function for the page, and draw the plots whose stub ran before it.
export default function install() {
  window.funnelkitPlot = render;
  for (const waiting of (window.funnelkitPlotWaiting || []).splice(0)) render(waiting);
}
