// Simulator dashboard: state and messages arrive over SSE (/events); buttons POST stdin commands to /cmd.
"use strict";
const $ = (sel) => document.querySelector(sel);
const LOG_MAX = 500;
const SAMPLES_MAX = 4000; // past this every other sample goes (the server thins the same way)
let state = null;
let samples = []; // {t, c: [{id, status, tx, offeredA, drawnA, powerW, energyWh, scheduleA}]}, oldest first

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

async function send(line) {
  await fetch("/cmd", { method: "POST", body: line });
}

function connectorId() { return $("#cid").value || "1"; }

function wireControls() {
  document.querySelectorAll("button[data-cmd]").forEach((b) =>
    b.addEventListener("click", () => send(b.dataset.cmd + " " + connectorId())));
  document.querySelectorAll("button[data-plain]").forEach((b) =>
    b.addEventListener("click", () => send(b.dataset.plain)));
  $("#btn-card").addEventListener("click", () => {
    const tag = $("#card-input").value.trim();
    if (tag) send("card " + tag);
  });
  $("#card-input").addEventListener("keydown", (e) => { if (e.key === "Enter") $("#btn-card").click(); });
  $("#btn-fault").addEventListener("click", () => send("fault " + connectorId() + " " + $("#fault-code").value));
  $("#log-filter").addEventListener("input", applyFilter);
  document.querySelectorAll(".ftype").forEach((c) => c.addEventListener("change", applyFilter));
  $("#log-clear").addEventListener("click", () => { $("#log tbody").innerHTML = ""; });
  $("#cid").addEventListener("change", () => { if (state) render(state); drawSession(); });
}

function badge(el, text, cls) { el.textContent = text; el.className = "badge " + (cls || ""); }

function fmt(v, unit, digits) {
  if (v === null || v === undefined) return "-";
  return (digits === undefined ? v : Number(v).toFixed(digits)) + (unit ? " " + unit : "");
}

function connectorCard(c) {
  const tx = c.transactionId === null || c.transactionId === undefined ? "-" : c.transactionId;
  const ev = c.ev || {};
  const rows = [
    ["transaction", tx], ["idTag", c.idTag || "-"],
    ["current", fmt(c.currentA, "A", 1)], ["power", fmt(c.powerW, "W")],
    ["energy (meter)", fmt(c.energyWh, "Wh")], ["energy (session)", fmt(c.sessionWh, "Wh")],
    ["offered (pilot)", fmt(c.limitA, "A", 1)], ["PWM duty", fmt(c.dutyPct, "%", 1)],
    ["schedule limit", fmt(c.scheduleLimitA, "A")], ["EV", (ev.plugged ? "plugged, CP " + ev.cp : "unplugged") +
      (ev.soc !== undefined && ev.plugged ? ", SoC " + ev.soc + " %" : "")],
    ["relay", ev.relay ? "closed" : "open"],
  ];
  if (c.errorCode && c.errorCode !== "NoError") rows.unshift(["error", c.errorCode]);
  if (c.reservation) rows.push(["reserved for", c.reservation.idTag + " #" + c.reservation.reservationId]);
  const dl = rows.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  return `<div class="connector" data-id="${c.connectorId}"><div class="dim">connector ${c.connectorId}</div>` +
    `<div class="status s-${esc(c.status)}">${esc(c.status)}</div><dl>${dl}</dl></div>`;
}

function render(s) {
  state = s;
  $("#ident").textContent = s.id || "station";
  document.title = (s.id || "station") + " - OCPP simulator";
  badge($("#link"), s.connected ? "online" : "offline", s.connected ? "on" : "off");
  badge($("#boot"), "boot " + (s.registration || "-"));
  badge($("#security"), "security profile " + fmt(s.securityProfile));
  badge($("#locallist"), "local list v" + fmt(s.localListVersion));
  $("#url").textContent = s.url || "";
  const conns = (s.connectors || []).filter((c) => c.connectorId > 0);
  const sel = $("#cid");
  if (sel.options.length !== conns.length) {
    sel.innerHTML = conns.map((c) => `<option>${c.connectorId}</option>`).join("");
  }
  $("#connectors").innerHTML = conns.map(connectorCard).join("");
  const cur = conns.find((c) => String(c.connectorId) === connectorId()) || conns[0];
  $("#sched-cid").textContent = cur ? cur.connectorId : "-";
  drawSchedule(cur ? cur.schedule : null);
  const rs = s.reservations || [];
  $("#reservations").innerHTML = rs.length ? rs.map((r) =>
    `<li>#${esc(r.reservationId)} connector ${esc(r.connectorId)}: ${esc(r.idTag)} until ${esc(r.expiryDate)}</li>`)
    .join("") : '<li class="dim">none</li>';
}

function drawSchedule(sched) {
  const cv = $("#schedule");
  const g = cv.getContext("2d");
  const W = cv.width, H = cv.height, L = 40, B = 20;
  g.clearRect(0, 0, W, H);
  const cs = sched && sched.chargingSchedule;
  const note = $("#sched-note");
  if (!cs || !cs.chargingSchedulePeriod || !cs.chargingSchedulePeriod.length) {
    note.textContent = sched ? "status " + (sched.status || "-") + ": no limit scheduled" : "no smart charging";
    return;
  }
  const periods = cs.chargingSchedulePeriod;
  const dur = cs.duration || 21600;
  const top = Math.max(...periods.map((p) => p.limit)) * 1.15 || 1;
  const x = (t) => L + (W - L - 5) * Math.min(t, dur) / dur;
  const y = (v) => H - B - (H - B - 8) * v / top;
  g.strokeStyle = "#ccd"; g.fillStyle = "#777"; g.font = "11px sans-serif";
  for (let h = 0; h <= dur / 3600; h++) {
    g.beginPath(); g.moveTo(x(h * 3600), 4); g.lineTo(x(h * 3600), H - B); g.stroke();
    g.fillText("+" + h + "h", Math.min(x(h * 3600) - 8, W - 24), H - 5);
  }
  g.fillText(top.toFixed(0) + " " + cs.chargingRateUnit, 2, 14);
  g.fillText("0", 2, H - B);
  g.strokeStyle = "#1565c0"; g.lineWidth = 2; g.beginPath();
  periods.forEach((p, i) => {
    const end = i + 1 < periods.length ? periods[i + 1].startPeriod : dur;
    if (i === 0) g.moveTo(x(p.startPeriod), y(p.limit)); else g.lineTo(x(p.startPeriod), y(p.limit));
    g.lineTo(x(end), y(p.limit));
  });
  g.stroke();
  note.textContent = periods.length + " period(s) from " + (cs.startSchedule || "now") + ", unit " + cs.chargingRateUnit;
}

// ---- the session plot: current, power and energy over time, with marks ----
function series(cid) {
  const out = [];
  for (const s of samples) {
    const c = (s.c || []).find((x) => String(x.id) === cid);
    if (c) out.push(Object.assign({ t: s.t }, c));
  }
  return out;
}

function hasTx(p) { return p.tx !== null && p.tx !== undefined; }

// Where the transaction starts or stops and the status changes, between samples.
function sessionMarks(pts) {
  const out = [];
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1], b = pts[i];
    if (a.tx !== b.tx && hasTx(a)) out.push({ t: b.t, tx: true, label: "stop #" + a.tx });
    if (a.tx !== b.tx && hasTx(b)) out.push({ t: b.t, tx: true, label: "start #" + b.tx });
    if (a.status !== b.status) out.push({ t: b.t, tx: false, label: b.status });
  }
  return out;
}

function clock(t) { return new Date(t * 1000).toTimeString().slice(0, 8); }

// HH:MM:SS.mmm, as the terminal view writes it
function stamp(t) { return clock(t) + "." + String(Math.floor(t * 1000) % 1000).padStart(3, "0"); }

function timeStep(span) {
  const steps = [5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
  return steps.find((s) => span / s <= 6) || 28800;
}

// One strip of the plot: y scale, grid, label, and a line per series.
function strip(g, box, lo, hi, label, lines, x) {
  const y = (v) => box.top + box.h - box.h * (v - lo) / (hi - lo || 1);
  g.strokeStyle = "#e3e5ee"; g.lineWidth = 1; g.setLineDash([]);
  g.strokeRect(box.left, box.top, box.w, box.h);
  g.fillStyle = "#777"; g.font = "11px sans-serif";
  g.fillText(label, box.left + 4, box.top + 11);
  g.fillText(hi.toFixed(hi < 10 ? 1 : 0), 2, box.top + 9);
  g.fillText(lo.toFixed(lo < 10 && lo !== 0 ? 1 : 0), 2, box.top + box.h);
  for (const ln of lines) {
    g.strokeStyle = ln.color; g.lineWidth = 2; g.setLineDash(ln.dash || []); g.beginPath();
    let open = false, prev = null;
    for (const p of ln.pts) {
      const v = p[1];
      if (v === null || v === undefined) { open = false; continue; }
      if (!open) g.moveTo(x(p[0]), y(v));
      else if (ln.step) g.lineTo(x(p[0]), y(prev));
      if (open) g.lineTo(x(p[0]), y(v));
      open = true; prev = v;
    }
    g.stroke();
  }
  g.setLineDash([]);
}

function drawSession() {
  const cv = $("#session");
  const g = cv.getContext("2d");
  const W = cv.width, H = cv.height, L = 40, R = 10, T = 16, B = 18, GAP = 10;
  const cid = connectorId();
  $("#plot-cid").textContent = cid;
  const pts = series(cid);
  g.clearRect(0, 0, W, H);
  const marks = sessionMarks(pts);
  cv.dataset.points = pts.length;
  cv.dataset.drawnMax = Math.max(0, ...pts.map((p) => p.drawnA || 0));
  cv.dataset.marks = marks.map((m) => m.label).join(",");
  if (pts.length < 2) {
    $("#plot-note").textContent = pts.length ? "1 sample: the plot starts with the next" : "no samples yet";
    return;
  }
  const t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 30);
  const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
  const hA = (H - T - B - 2 * GAP) * 0.5, hP = (H - T - B - 2 * GAP) * 0.25;
  const box = (top, h) => ({ left: L, top, w: W - L - R, h });
  const amps = Math.max(6, ...pts.map((p) => Math.max(p.offeredA || 0, p.drawnA || 0, p.scheduleA || 0))) * 1.1;
  const kw = Math.max(1, ...pts.map((p) => (p.powerW || 0) / 1000)) * 1.1;
  const e = pts.map((p) => p.energyWh || 0), eLo = Math.min(...e), eHi = Math.max(eLo + 1, ...e);
  const col = (k) => pts.map((p) => [p.t, k(p)]);
  strip(g, box(T, hA), 0, amps, "current, A", [
    { pts: col((p) => p.scheduleA), color: "#6a1b9a", dash: [2, 3], step: true },
    { pts: col((p) => p.offeredA), color: "#ef6c00", dash: [6, 4], step: true },
    { pts: col((p) => p.drawnA), color: "#1565c0" }], x);
  strip(g, box(T + hA + GAP, hP), 0, kw, "power, kW", [{ pts: col((p) => (p.powerW || 0) / 1000), color: "#2e7d32" }], x);
  strip(g, box(T + hA + hP + 2 * GAP, hP), eLo, eHi, "energy (meter), Wh", [{ pts: col((p) => p.energyWh), color: "#00838f" }], x);
  // time axis
  g.fillStyle = "#777"; g.font = "11px sans-serif";
  const step = timeStep(t1 - t0);
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    g.fillText(clock(t), Math.min(x(t) - 22, W - 50), H - 4);
  }
  // marks across the strips, labels along the top
  let lastLabelX = -1e9;
  for (const m of marks) {
    const mx = x(m.t);
    g.strokeStyle = m.tx ? "#c62828" : "#999"; g.lineWidth = m.tx ? 1.5 : 1; g.setLineDash(m.tx ? [] : [3, 3]);
    g.beginPath(); g.moveTo(mx, T); g.lineTo(mx, H - B); g.stroke();
    g.fillStyle = m.tx ? "#c62828" : "#666";
    const lx = Math.max(mx + 2, lastLabelX + 4);
    if (lx < W - 30) { g.fillText(m.label, lx, T - 4); lastLabelX = lx + g.measureText(m.label).width; }
  }
  g.setLineDash([]);
  const last = pts[pts.length - 1];
  $("#plot-note").textContent = pts.length + " samples, " + clock(t0) + " to " + clock(last.t) + "; now " +
    fmt(last.drawnA, "A", 1) + " drawn of " + fmt(last.offeredA, "A", 1) + " offered, " +
    fmt((last.powerW || 0) / 1000, "kW", 2) + ", meter " + fmt(last.energyWh, "Wh") +
    (marks.length ? "; " + marks.length + " mark(s)" : "");
}

function addSample(s) {
  samples.push(s);
  if (samples.length > SAMPLES_MAX) samples = samples.filter((_, i) => i % 2 === 0);
  drawSession();
}

function logRow(ev) {
  const frame = ev.event === "sent" || ev.event === "received";
  const type = frame ? ev.type : "event";
  const tr = document.createElement("tr");
  tr.className = "t-" + type;
  tr.dataset.type = type;
  const t = ev.t || Date.now() / 1000;
  const arrow = !frame ? "" : ev.event === "sent" ? "\u2192" : "\u2190";
  const summary = ev.summary !== undefined ? ev.summary : Object.entries(ev).filter(([k]) => k !== "event" && k !== "t")
    .map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" ");
  tr.innerHTML = `<td>${stamp(t)}</td><td>${arrow}</td><td>${esc(type)}</td>` +
    `<td>${esc(frame ? ev.action || "" : ev.event)}</td><td>${esc(summary)}</td>` +
    `<td>${ev.rttMs !== undefined ? ev.rttMs + " ms" : ""}</td>`;
  tr.dataset.text = (type + " " + (ev.action || ev.event) + " " + JSON.stringify(ev.payload || ev)).toLowerCase();
  if (frame) {
    tr.addEventListener("click", () => {
      const open = tr.querySelector("pre");
      if (open) { open.remove(); return; }
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify(ev.payload, null, 2);
      tr.cells[4].appendChild(pre);
    });
  }
  return tr;
}

function visible(tr) {
  const q = $("#log-filter").value.trim().toLowerCase();
  const types = [...document.querySelectorAll(".ftype:checked")].map((c) => c.value);
  return types.includes(tr.dataset.type) && (!q || tr.dataset.text.includes(q));
}

function applyFilter() {
  document.querySelectorAll("#log tbody tr").forEach((tr) => { tr.hidden = !visible(tr); });
}

function addLog(ev) {
  const body = $("#log tbody");
  const tr = logRow(ev);
  tr.hidden = !visible(tr);
  body.insertBefore(tr, body.firstChild);
  while (body.rows.length > LOG_MAX) body.deleteRow(body.rows.length - 1);
}

function connect() {
  const es = new EventSource("/events");
  es.addEventListener("state", (e) => render(JSON.parse(e.data)));
  es.addEventListener("frame", (e) => addLog(JSON.parse(e.data)));
  es.addEventListener("history", (e) => { samples = JSON.parse(e.data); drawSession(); });
  es.addEventListener("sample", (e) => addSample(JSON.parse(e.data)));
  es.onerror = () => badge($("#link"), "dashboard disconnected", "off");
}

wireControls();
connect();
