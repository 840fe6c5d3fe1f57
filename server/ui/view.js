// Shared by every view: the MCP Apps protocol from the view's side (JSON-RPC 2.0 over postMessage, no SDK),
// theming from the host context, size reports, formatting and an inline SVG line chart.
"use strict";

const PROTOCOL_VERSION = "2026-01-26";
const REQUEST_TIMEOUT_MS = 30000;

const Host = (() => {
  let nextId = 1;
  const pending = new Map();
  const handlers = {};
  const state = { capabilities: {}, context: {} };

  const post = (message) => window.parent.postMessage(message, "*"); // an opaque origin cannot be targeted

  function request(method, params) {
    const id = nextId++;
    post({ jsonrpc: "2.0", id, method, params });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: the host did not answer in ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
    });
  }

  function notify(method, params) {
    const message = { jsonrpc: "2.0", method };
    if (params !== undefined) message.params = params;
    post(message);
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return; // only the host speaks to us
    const m = event.data;
    if (!m || m.jsonrpc !== "2.0") return;
    if (m.method === undefined) { // a reply to one of our requests (ids may be 0: never test truthiness)
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new Error(m.error.message || "host error"));
      else p.resolve(m.result);
      return;
    }
    if (m.method === "ui/resource-teardown") {
      if (handlers.teardown) handlers.teardown();
      post({ jsonrpc: "2.0", id: m.id, result: {} });
      return;
    }
    if (m.method === "ping") { post({ jsonrpc: "2.0", id: m.id, result: {} }); return; }
    if (m.method === "ui/notifications/host-context-changed") { applyContext(m.params || {}); return; }
    const handler = handlers[m.method];
    if (handler) handler(m.params || {});
    else if (m.id !== undefined) post({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "Method not found" } });
  });

  function applyContext(context) {
    Object.assign(state.context, context);
    const root = document.documentElement;
    if (context.theme === "light" || context.theme === "dark") root.dataset.theme = context.theme;
    const vars = context.styles && context.styles.variables;
    if (vars) for (const [key, value] of Object.entries(vars)) {
      if (key.startsWith("--") && typeof value === "string") root.style.setProperty(key, value);
    }
  }

  let lastHeight = 0;
  let sizeTimer = null;
  function reportSize() { // debounced, and only when it changed: no grow loop with the host
    clearTimeout(sizeTimer);
    sizeTimer = setTimeout(() => {
      const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
      if (height === lastHeight) return;
      lastHeight = height;
      notify("ui/notifications/size-changed", { width: Math.ceil(document.documentElement.clientWidth), height });
    }, 60);
  }

  async function start(appName) {
    const result = await request("ui/initialize", {
      appInfo: { name: appName, version: "1" },
      appCapabilities: { availableDisplayModes: ["inline"] },
      protocolVersion: PROTOCOL_VERSION,
    });
    state.capabilities = (result && result.hostCapabilities) || {};
    applyContext((result && result.hostContext) || {});
    notify("ui/notifications/initialized");
    new ResizeObserver(reportSize).observe(document.body);
    reportSize();
  }

  // A server tool through the host. Resolves to the structured result; rejects with the tool's error text.
  async function callTool(name, args) {
    const result = await request("tools/call", { name, arguments: args });
    if (!result || result.isError) throw new Error(resultText(result) || `${name} failed`);
    return structured(result);
  }

  return {
    start, callTool, notify, reportSize, state,
    on: (method, handler) => { handlers[method] = handler; },
    canCallTools: () => Boolean(state.capabilities.serverTools),
  };
})();

function resultText(result) {
  return ((result && result.content) || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

function structured(result) {
  if (result && result.structuredContent) return result.structuredContent;
  try { return JSON.parse(resultText(result)); } catch (_) { return null; }
}

// -- formatting -------------------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function money(amount, currency) {
  if (amount === null || amount === undefined) return "unknown";
  if (amount > 0 && amount < 0.01) return `< ${currency} 0.01`;
  return `${currency} ${amount.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

function number(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e6)) return v.toExponential(2);
  return String(Math.round(v * 10000) / 10000);
}

const TERMINAL = new Set(["Succeeded", "Failed", "Stopped"]);
const COLORS = ["var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)"];

function badge(status) {
  return el("span", { class: `badge ${String(status || "").toLowerCase()}`, "data-status": status, text: status || "…" });
}

// -- chart --------------------------------------------------------------------------------------------------

// A line chart of `series` ([{label, xs, ys, color}]) drawn at the container's real width, so text stays
// readable when the view is narrow. Each line carries its values as data attributes.
function lineChart(series, options = {}) {
  const holder = el("div");
  const draw = () => {
    const width = Math.max(200, Math.floor(holder.clientWidth || 300));
    holder.replaceChildren(svgChart(series, width, { height: 150, xLabel: "", xTicks: true, ...options }));
  };
  holder.redraw = draw;
  requestAnimationFrame(draw);
  charts.add(holder);
  return holder;
}

const charts = new Set();
let lastWidth = 0;
new ResizeObserver(() => { // redraw at the new width (the height is fixed, so this cannot loop)
  const width = document.documentElement.clientWidth;
  if (width === lastWidth) return;
  lastWidth = width;
  for (const c of charts) if (c.isConnected) c.redraw(); else charts.delete(c);
}).observe(document.documentElement);

function svgChart(series, width, { height, xLabel, xTicks, yMin, yMax }) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  const all = series.flatMap((s) => s.ys.map((y, i) => [s.xs[i], y])).filter(([x, y]) => isFinite(x) && isFinite(y));
  if (!all.length) {
    add("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no points yet");
    return svg;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.06;
  y0 = y0 >= 0 ? Math.max(0, y0 - pad) : y0 - pad; // a loss or a percentage never dips below zero on screen
  y1 += pad;
  if (yMin !== undefined) y0 = Math.min(y0, yMin);
  if (yMax !== undefined) y1 = Math.max(y1, yMax);
  const left = 46, right = 10, top = 8, bottom = xLabel ? 30 : xTicks ? 20 : 6;
  const sx = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const sy = (y) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  for (const v of ticks(y0, y1, 3)) {
    add("line", { class: "grid", x1: left, x2: width - right, y1: sy(v), y2: sy(v) });
    add("text", { x: left - 4, y: sy(v) + 3, "text-anchor": "end" }, number(v));
  }
  if (xTicks) {
    add("text", { x: left, y: height - bottom + 12, "text-anchor": "start" }, number(x0));
    add("text", { x: width - right, y: height - bottom + 12, "text-anchor": "end" }, number(x1));
  }
  if (xLabel) add("text", { x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle" }, xLabel);
  series.forEach((s, n) => {
    const points = s.ys.map((y, i) => [s.xs[i], y]).filter(([x, y]) => isFinite(x) && isFinite(y));
    if (!points.length) return;
    const d = points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    const color = s.color || COLORS[n % COLORS.length];
    add("path", { class: "line", d, stroke: color, "data-label": s.label, "data-x": points.map((p) => p[0]).join(","),
                  "data-values": points.map((p) => p[1]).join(",") });
    if (points.length === 1) add("circle", { cx: sx(points[0][0]), cy: sy(points[0][1]), r: 3, fill: color });
  });
  return svg;
}

// About `count` round values (1, 2, 2.5 or 5 times a power of ten apart) between lo and hi.
function ticks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * magnitude >= raw) * magnitude;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

// The x values of a training metric's series: the bucket means of the `step` metric when it was logged on
// the same lines (same sample count, same buckets), else the middle sample number of each bucket.
function xsFor(summary, step) {
  const n = summary.series.length;
  if (step && step.samples === summary.samples && step.series.length === n) return step.series;
  const per = summary.samples / Math.max(n, 1);
  return summary.series.map((_, i) => Math.round((i + 0.5) * per));
}
