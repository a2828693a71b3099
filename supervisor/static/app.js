// 12345 live queues: renders the server's view (already masked for this user's role) as it streams in.
// No framework, no network beyond this server: EventSource for the state, fetch for history and actions.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const CSRF = meta("csrf-token");
const SL = Number(meta("service-level")) || 15;
const SVG_NS = "http://www.w3.org/2000/svg";
const STATE_LABEL = { free: "free", busy: "on a call", paused: "paused", unavailable: "unavailable" };
const PAUSE_REASONS = ["break", "lunch", "training", "meeting", "after-call work", "coaching"];

let view = null;
let may = new Set();
// The tiles are redrawn on every frame; a frame arriving between pressing and releasing a button would
// replace that button and lose the click, so frames wait while the pointer is down.
let holding = false;
let pending = false;
document.addEventListener("pointerdown", () => { holding = true; }, true);
document.addEventListener("pointerup", () => {
  holding = false;
  if (pending) { pending = false; setTimeout(render, 50); }
}, true);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

function dur(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}:${String(s % 60).padStart(2, "0")}`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}`;
}

const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
const slClass = (v) => (v === null || v === undefined ? "" : v >= 0.8 ? "good" : v >= 0.6 ? "warn" : "bad");

// ---- rendering ---------------------------------------------------------------------------------------
function render() {
  if (!view) return;
  may = new Set(view.user.may);
  renderServers();
  renderTotals();
  renderQueues();
  renderLines();
}

function renderServers() {
  const box = document.getElementById("servers");
  box.replaceChildren(...view.servers.map((s) =>
    el("span", { class: `server-chip ${s.connected ? "up" : "down"}`, title: s.connected ? "AMI connected" : "AMI link down: figures may be stale" },
      el("i"), s.name)));
}

function renderTotals() {
  let waiting = 0, longest = 0, answered = 0, abandoned = 0, overflowed = 0, inSl = 0;
  const agents = { free: 0, busy: 0, paused: 0, unavailable: 0 };
  const seen = new Set();
  for (const s of view.servers) for (const q of s.queues) {
    waiting += q.waiting; longest = Math.max(longest, q.longest_wait);
    answered += q.answered; abandoned += q.abandoned; overflowed += q.overflowed; inSl += q.answered_in_sl;
    for (const m of q.members) {  // an agent in several queues counts once
      const key = `${s.name}|${m.interface}`;
      if (!seen.has(key)) { seen.add(key); agents[m.state] += 1; }
    }
  }
  const sl = answered + abandoned ? inSl / (answered + abandoned) : null;
  const box = document.getElementById("totals");
  box.replaceChildren(
    kpi("waiting now", waiting, waiting ? "warn" : ""),
    kpi("longest wait", dur(longest), longest > SL ? "bad" : ""),
    kpi(`service level (${SL} s)`, pct(sl), slClass(sl)),
    kpi("answered today", answered),
    kpi("abandoned today", abandoned, abandoned ? "warn" : ""),
    kpi("overflowed today", overflowed),
    kpi("agents free", agents.free, "good"),
    kpi("on a call", agents.busy),
    kpi("paused", agents.paused, agents.paused ? "warn" : ""),
    kpi("unavailable", agents.unavailable, ""),
  );
}

function kpi(label, value, tone = "") {
  return el("div", { class: `kpi ${tone}` }, el("b", {}, value), el("span", {}, label));
}

function renderQueues() {
  const box = document.getElementById("queues");
  const tiles = [];
  for (const s of view.servers) for (const q of s.queues) tiles.push(tile(s, q));
  if (!tiles.length) tiles.push(el("p", { class: "empty" }, "No queues reported yet."));
  box.replaceChildren(...tiles);
}

function tile(server, q) {
  const hot = q.longest_wait > SL;
  const article = el("article", { class: `tile${hot ? " hot" : ""}${server.connected ? "" : " stale"}`, "data-server": server.name, "data-queue": q.name });
  article.append(
    el("header", {}, el("h2", {}, q.name), el("span", { class: "server" }, server.name)),
    el("div", { class: "kpis" },
      kpi("waiting", q.waiting, q.waiting ? "warn" : ""),
      kpi("longest", dur(q.longest_wait), hot ? "bad" : ""),
      kpi("SL today", pct(q.service_level), slClass(q.service_level)),
      kpi("answered", q.answered),
      kpi("abandoned", q.abandoned, q.abandoned ? "warn" : ""),
      kpi("overflowed", q.overflowed)),
    stateBar(q.members_by_state),
  );
  const callers = el("ul", { class: "callers" });
  q.callers.forEach((c, i) => callers.append(el("li", { class: `caller${c.wait > SL ? " over" : ""}${i === 0 ? " first" : ""}`, "data-id": c.id },
    el("span", { class: "wait" }, dur(c.wait)),
    el("span", { class: "line" }, c.line || "?"),
    el("span", { class: "number" }, c.number || "unknown"),
    el("span", { class: "name" }, c.name))));
  if (!q.callers.length) callers.append(el("li", { class: "none" }, "no caller waiting"));
  article.append(el("h3", {}, "Waiting callers"), callers);

  const members = el("ul", { class: "members" });
  for (const m of q.members) members.append(memberRow(server, q, m));
  if (!q.members.length) members.append(el("li", { class: "none" }, "no members"));
  article.append(el("h3", {}, "Agents"), members);
  if (may.has("add")) article.append(el("footer", {}, el("button", { class: "link", onclick: () => addDialog(server, q) }, "+ add member")));
  return article;
}

function stateBar(by) {
  const total = Object.values(by).reduce((a, b) => a + b, 0) || 1;
  const bar = el("div", { class: "statebar", title: Object.entries(by).map(([k, v]) => `${v} ${STATE_LABEL[k]}`).join(", ") });
  for (const key of ["free", "busy", "paused", "unavailable"]) {
    if (!by[key]) continue;
    const part = el("span", { class: `st-${key}` }, `${by[key]} ${STATE_LABEL[key]}`);
    part.style.flexGrow = String(by[key] / total);
    bar.append(part);
  }
  return bar;
}

function memberRow(server, q, m) {
  const base = { server: server.name, queue: q.name, interface: m.interface };
  let detail = STATE_LABEL[m.state];
  if (m.state === "busy" && m.ringing) detail = "ringing";
  if (m.state === "paused") detail = `paused ${dur(m.paused_for)}${m.reason ? ` · ${m.reason}` : ""}`;
  const buttons = el("span", { class: "actions" });
  if (m.state === "paused" && may.has("unpause")) buttons.append(el("button", { class: "unpause", onclick: () => act("unpause", base) }, "Unpause"));
  if (m.state !== "paused" && may.has("pause")) buttons.append(el("button", { class: "pause", onclick: () => pauseDialog(base, m) }, "Pause"));
  if (m.state === "busy" && may.has("listen")) {
    for (const kind of ["listen", "whisper", "barge"]) if (may.has(kind)) buttons.append(el("button", { class: kind, onclick: () => spyDialog(kind, base, m) }, kind[0].toUpperCase() + kind.slice(1)));
  }
  if (may.has("remove")) buttons.append(el("button", { class: "remove", title: `remove from ${q.name}`, onclick: () => removeDialog(base, m) }, "×"));
  return el("li", { class: `member st-${m.state}`, "data-interface": m.interface, "data-state": m.state },
    el("i", { class: "dot" }),
    el("span", { class: "mname", title: m.interface }, m.name),
    el("span", { class: "mstate" }, detail),
    el("span", { class: "calls", title: "calls taken" }, m.calls_taken ? `${m.calls_taken} calls` : ""),
    buttons);
}

function renderLines() {
  const body = document.querySelector("#lines tbody");
  const rows = view.lines.map((r) => {
    const offered = r.answered + r.abandoned;
    const sl = offered ? r.answered_in_sl / offered : null;
    return el("tr", { "data-line": r.line }, el("td", {}, r.line), el("td", { class: r.waiting ? "warn" : "" }, r.waiting),
      el("td", {}, r.answered), el("td", {}, r.abandoned), el("td", {}, r.overflowed),
      el("td", { class: slClass(sl) }, pct(sl)));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "none" }, "no calls yet today")));
  body.replaceChildren(...rows);
}

// ---- actions -----------------------------------------------------------------------------------------
function toast(text, ok) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.className = `toast show ${ok ? "ok" : "err"}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = "toast"; }, 4000);
}

async function act(kind, params) {
  try {
    const res = await fetch(`/api/action/${kind}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify(params),
    });
    if (res.status === 401) { location.href = "/login"; return; }
    const data = await res.json();
    toast(data.ok ? `${kind}: ${data.message}` : `${kind} refused: ${data.message}`, data.ok);
    loadAudit();
  } catch (err) {
    toast(`${kind} failed: ${err}`, false);
  }
}

function openDialog(title, body, onOk) {
  const dialog = document.getElementById("dialog");
  document.getElementById("dialog-title").textContent = title;
  document.getElementById("dialog-body").replaceChildren(...body);
  const form = document.getElementById("dialog-form");
  form.onsubmit = (event) => { event.preventDefault(); dialog.close(); onOk(new FormData(form)); };
  document.getElementById("dialog-cancel").onclick = () => dialog.close();
  dialog.showModal();
  const first = dialog.querySelector("input, select");
  if (first) first.focus();
}

function pauseDialog(base, m) {
  const select = el("select", { name: "reason_choice" }, PAUSE_REASONS.map((r) => el("option", { value: r }, r)));
  openDialog(`Pause ${m.name}`, [
    el("label", {}, "Reason ", select),
    el("label", {}, "or type one ", el("input", { name: "reason_text", maxlength: 64, placeholder: "optional" })),
  ], (form) => act("pause", { ...base, reason: (form.get("reason_text") || "").trim() || form.get("reason_choice") }));
}

function spyDialog(kind, base, m) {
  const phone = localStorage.getItem("hotline.phone") || meta("user-phone");
  const what = { listen: "listen to the call (agent and caller do not hear you)", whisper: "talk to the agent only", barge: "talk to both agent and caller" }[kind];
  openDialog(`${kind[0].toUpperCase() + kind.slice(1)}: ${m.name}`, [
    el("p", {}, `Your phone rings; answer it to ${what}.`),
    el("label", {}, "Your phone ", el("input", { name: "phone", value: phone, placeholder: "PJSIP/9001", required: true, pattern: "[A-Za-z0-9]+/.+" })),
  ], (form) => { localStorage.setItem("hotline.phone", form.get("phone")); act(kind, { ...base, phone: form.get("phone") }); });
}

function removeDialog(base, m) {
  openDialog(`Remove ${m.name} from ${base.queue}?`, [el("p", {}, `${m.interface} stops receiving calls from ${base.queue} on ${base.server}.`)],
    () => act("remove", base));
}

function addDialog(server, q) {
  openDialog(`Add a member to ${q.name}`, [
    el("label", {}, "Interface ", el("input", { name: "interface", placeholder: "PJSIP/7001", required: true })),
    el("label", {}, "Name ", el("input", { name: "member_name", placeholder: "Agent name" })),
    el("label", {}, "Penalty ", el("input", { name: "penalty", type: "number", min: 0, max: 100, value: 0 })),
  ], (form) => act("add", { server: server.name, queue: q.name, interface: form.get("interface"), member_name: form.get("member_name"), penalty: form.get("penalty") }));
}

async function loadAudit() {
  if (!may.has("audit")) return;
  const res = await fetch("/api/audit", { credentials: "same-origin" });
  if (!res.ok) return;
  const data = await res.json();
  document.getElementById("audit-panel").hidden = false;
  document.getElementById("audit").replaceChildren(...data.entries.slice(0, 12).map((e) =>
    el("li", { class: e.result === "ok" ? "ok" : "err" }, el("time", {}, e.at.slice(11, 19)), ` ${e.user} ${e.action} ${e.params.interface || ""} ${e.params.queue || ""}: ${e.message}`)));
}

// ---- charts --------------------------------------------------------------------------------------------
async function loadHistory() {
  const hours = document.getElementById("range").value;
  try {
    const res = await fetch(`/api/history?hours=${hours}`, { credentials: "same-origin" });
    if (!res.ok) return;
    const data = await res.json();
    const box = document.getElementById("charts");
    // right after a restart only a little history exists: show what there is (at least 30 s), not a sliver
    const first = Math.min(...data.series.flatMap((s) => s.points.map((p) => p[0])), data.now);
    const span = Math.min(data.hours * 3600, Math.max(30, data.now - first));
    box.replaceChildren(...data.series.map((s) => chart(s, data.now, span)));
    if (!data.series.length) box.append(el("p", { class: "none" }, "collecting samples…"));
  } catch (err) { /* the next poll tries again */ }
}

function chart(series, now, span) {
  const W = 300, H = 86, P = 4, B = 14;
  const points = series.points;
  const maxWait = Math.max(2, ...points.map((p) => p[1]));
  const x = (t) => P + ((t - (now - span)) / span) * (W - 2 * P);
  const yw = (v) => H - B - (v / maxWait) * (H - B - P);
  const ys = (v) => H - B - v * (H - B - P);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `${series.queue} history` });
  root.append(svg("rect", { x: 0, y: 0, width: W, height: H, class: "bg" }));
  for (const f of [0.25, 0.5, 0.75]) root.append(svg("line", { x1: P, x2: W - P, y1: ys(f), y2: ys(f), class: "grid" }));
  if (points.length) {
    let area = `M${x(points[0][0])},${yw(0)}`;
    for (const p of points) area += ` L${x(p[0])},${yw(p[1])}`;
    area += ` L${x(points[points.length - 1][0])},${yw(0)} Z`;
    root.append(svg("path", { d: area, class: "wait-area" }));
    let line = "";
    for (const p of points) if (p[3] !== null) line += `${line ? " L" : "M"}${x(p[0])},${ys(p[3])}`;
    if (line) root.append(svg("path", { d: line, class: "sl-line" }));
  }
  const label = (text, xx, anchor, cls = "axis", yy = H - 3) => { const t = svg("text", { x: xx, y: yy, "text-anchor": anchor, class: cls }); t.textContent = text; return t; };
  root.append(label("SL 100%", P + 1, "start", "axis sl-axis", ys(1) + 8), label("50%", P + 1, "start", "axis sl-axis", ys(0.5) - 2));
  const ago = span >= 3600 ? `-${Math.round(span / 360) / 10} h` : span >= 120 ? `-${Math.round(span / 60)} min` : `-${Math.round(span)} s`;
  root.append(label(ago, P, "start"), label("now", W - P, "end"), label(`max ${maxWait} waiting`, W / 2, "middle"));
  return el("figure", { class: "chart-box" }, el("figcaption", {}, `${series.queue}`, el("small", {}, ` ${series.server}`)), root);
}

// ---- wiring --------------------------------------------------------------------------------------------
function clock() {
  const fmt = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  document.getElementById("clock").textContent = `${fmt.format(new Date())} Beijing time`;
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("state", (event) => {
    view = JSON.parse(event.data);
    document.body.classList.remove("offline");
    if (holding) pending = true; else render();
  });
  source.onerror = async () => {
    document.body.classList.add("offline");
    const res = await fetch("/api/state", { credentials: "same-origin" }).catch(() => null);
    if (res && res.status === 401) { source.close(); location.href = "/login"; }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  connect();
  clock();
  setInterval(clock, 1000);
  loadHistory();
  setInterval(loadHistory, 15000);
  document.getElementById("range").addEventListener("change", loadHistory);
  fetch("/api/state", { credentials: "same-origin" }).then((r) => r.json()).then((v) => { may = new Set(v.user.may); loadAudit(); }).catch(() => {});
});
