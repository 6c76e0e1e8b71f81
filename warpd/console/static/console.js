// warpd consoles: live figures over server-sent events and small SVG charts.
// No framework and nothing fetched from elsewhere; the pages work without it.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = { in: "#2563eb", out: "#16a34a", receipts: "#d97706" };
const KEEP = 120; // points: two minutes at one a second

function el(name, attrs) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// The drawing's own units: the viewBox, which the page scales to its width.
function size(svg) {
  const box = svg.viewBox.baseVal;
  return [box.width || 600, box.height || 160];
}

// A line chart over the last KEEP points of each series, scaled to its peak.
class LineChart {
  constructor(svg) {
    this.svg = svg;
    this.names = (svg.dataset.series || "in").split(",");
    this.points = Object.fromEntries(this.names.map((n) => [n, []]));
    this.samples = 0;
  }
  push(values) {
    for (const n of this.names) {
      const list = this.points[n];
      list.push(Number(values[n] || 0));
      if (list.length > KEEP) list.shift();
    }
    this.samples += 1;
    this.draw();
  }
  draw() {
    const [w, h] = size(this.svg), pad = 24;
    const peak = Math.max(1, ...this.names.flatMap((n) => this.points[n]));
    this.svg.replaceChildren(
      el("line", { x1: pad, y1: h - pad, x2: w, y2: h - pad, class: "axis" }),
      Object.assign(el("text", { x: 0, y: 12, class: "tick" }), { textContent: peak.toFixed(1) }),
      Object.assign(el("text", { x: 0, y: h - pad, class: "tick" }), { textContent: "0" }),
    );
    for (const n of this.names) {
      const list = this.points[n];
      const step = (w - pad) / (KEEP - 1);
      const start = w - step * (list.length - 1);
      const coords = list.map((v, i) =>
        `${(start + i * step).toFixed(1)},${(h - pad - (v / peak) * (h - 2 * pad)).toFixed(1)}`);
      this.svg.appendChild(el("polyline", { points: coords.join(" "), stroke: COLOURS[n] || "#444",
        fill: "none", "stroke-width": 2, class: `series series-${n}` }));
      const label = el("text", { x: pad + 4 + 70 * this.names.indexOf(n), y: h - 6, class: "legend",
        fill: COLOURS[n] || "#444" });
      label.textContent = `${n} ${list.length ? list[list.length - 1].toFixed(1) : 0}/s`;
      this.svg.appendChild(label);
    }
    // What the tests (and curious people) read: how many samples, the newest peak.
    this.svg.dataset.samples = String(this.samples);
    this.svg.dataset.peak = String(peak);
    this.svg.dataset.last = JSON.stringify(Object.fromEntries(
      this.names.map((n) => [n, this.points[n][this.points[n].length - 1] || 0])));
  }
}

function barChart(svg, items) {
  const [w, h] = size(svg), pad = 24;
  const peak = Math.max(1, ...items.map((i) => i.messages));
  const width = Math.min(40, (w - pad) / Math.max(items.length, 1));
  svg.replaceChildren(el("line", { x1: pad, y1: h - pad, x2: w, y2: h - pad, class: "axis" }));
  items.forEach((item, i) => {
    const bar = el("rect", { x: pad + i * width + 1, width: Math.max(width - 2, 1),
      y: h - pad - (item.messages / peak) * (h - 2 * pad),
      height: (item.messages / peak) * (h - 2 * pad), class: "bar" });
    const tip = el("title", {});
    tip.textContent = `${item.day}: ${item.messages} messages`;
    bar.appendChild(tip);
    svg.appendChild(bar);
  });
  const label = el("text", { x: pad + 4, y: 12, class: "tick" });
  label.textContent = items.length ? `peak ${peak} messages/day` : "no messages yet";
  svg.appendChild(label);
  svg.dataset.days = String(items.length);
}

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value;
}

function percent(ratio) {
  return ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(1)}%`;
}

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  if (!body) return;
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    return tr;
  }));
}

// Micro-units as major units, exactly as the server prints them (no float rounding).
function money(micros) {
  const sign = micros < 0 ? "-" : "";
  const whole = Math.abs(micros);
  const fraction = String(whole % 1e6).padStart(6, "0").replace(/0+$/, "");
  return `${sign}${Math.floor(whole / 1e6)}${fraction ? "." + fraction : ""}`;
}

function operatorView(data, chart) {
  const t = data.totals;
  text("in-per-s", t.in_per_s.toFixed(1));
  text("out-per-s", t.out_per_s.toFixed(1));
  text("receipts-per-s", t.receipts_per_s.toFixed(1));
  text("delivery-ratio", percent(t.delivery_ratio));
  const q = data.queue || {};
  text("queue", `${q.depth ?? "–"} (${(q.oldest_s ?? 0).toFixed(1)} s)`);
  text("binds-up", String(t.binds_up));
  text("calls", `${data.voice.active_calls} / ${data.voice.cps.toFixed(1)}`);
  if (chart) chart.push({ in: t.in_per_s, out: t.out_per_s, receipts: t.receipts_per_s });
  fillTable("connector-table", Object.entries(data.connectors).map(([n, c]) =>
    [n, c.out_per_s.toFixed(1), c.receipts_per_s.toFixed(1), percent(c.delivery_ratio), c.queue,
      c.in_flight, c.binds_up]));
  fillTable("account-table", Object.entries(data.accounts).map(([n, a]) =>
    [n, a.in_per_s.toFixed(1), a.refused_per_s.toFixed(1)]));
  fillTable("error-table", Object.entries(data.errors).map(([k, v]) => [k, v]));
}

function connectorsView(data) {
  for (const row of document.querySelectorAll("tr[data-connector]")) {
    const c = data.connectors[row.dataset.connector];
    row.querySelector(".live-binds").textContent = c ? c.binds_up : "0";
    row.querySelector(".live-queue").textContent = c ? c.queue : "0";
    row.querySelector(".live-out").textContent = c ? c.out_per_s.toFixed(1) : "0";
  }
}

function customerView(data, chart, currency) {
  text("in-per-s", data.in_per_s.toFixed(1));
  const balance = document.getElementById("balance");
  if (balance && data.balance_micros !== undefined) {
    balance.dataset.micros = String(data.balance_micros);
    balance.textContent = `${money(data.balance_micros)} ${currency}`;
    const available = document.getElementById("available");
    if (available) {
      const credit = Number(available.dataset.credit || 0);
      available.textContent = `${money(data.balance_micros + credit)} ${currency}`;
    }
  }
  if (chart) chart.push({ in: data.in_per_s });
}

function start() {
  const usage = document.getElementById("usage-data");
  if (usage) barChart(document.getElementById("usage-chart"), JSON.parse(usage.textContent));
  const config = document.getElementById("live-config");
  if (!config || !window.EventSource) return;
  const { url, view, currency } = JSON.parse(config.textContent);
  const svg = document.getElementById("traffic-chart");
  const chart = svg ? new LineChart(svg) : null;
  const source = new EventSource(url);
  source.onopen = () => text("live-status", "live");
  source.onerror = () => text("live-status", "reconnecting…");
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (view === "operator") operatorView(data, chart);
    else if (view === "connectors") connectorsView(data);
    else customerView(data, chart, currency);
  };
}

document.addEventListener("DOMContentLoaded", start);
