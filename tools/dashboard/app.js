// Simulator dashboard: state and messages arrive over SSE (/events); buttons POST stdin commands to /cmd.
"use strict";
const $ = (sel) => document.querySelector(sel);
const LOG_MAX = 500;
let state = null;

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
  $("#cid").addEventListener("change", () => state && render(state));
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

function logRow(ev) {
  const frame = ev.event === "sent" || ev.event === "received";
  const type = frame ? ev.type : "event";
  const tr = document.createElement("tr");
  tr.className = "t-" + type;
  tr.dataset.type = type;
  const t = ev.t ? new Date(ev.t * 1000) : new Date();
  const arrow = !frame ? "" : ev.event === "sent" ? "\u2192" : "\u2190";
  const summary = frame ? (ev.summary || "") : Object.entries(ev).filter(([k]) => k !== "event" && k !== "t")
    .map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" ");
  tr.innerHTML = `<td>${t.toLocaleTimeString()}</td><td>${arrow}</td><td>${esc(type)}</td>` +
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
  es.onerror = () => badge($("#link"), "dashboard disconnected", "off");
}

wireControls();
connect();
