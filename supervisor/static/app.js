// 12345 live queues: renders the server's view (already masked for this user's role) as it streams in.
// No framework, no network beyond this server: EventSource for the state, fetch for history and actions.
// Every text comes from the page's message catalogue (supervisor/messages/*.yaml, in the page's language);
// names are the routing table's (the server sends them), times are shown in the table's time zone.
"use strict";

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
const CSRF = meta("csrf-token");
const SL = Number(meta("service-level")) || 15;
const ZONE = meta("timezone") || "Asia/Shanghai";
const LANG = document.documentElement.lang || "zh";
const LOCALE = LANG === "zh" ? "zh-CN" : "en-GB";
const MSG = JSON.parse(document.getElementById("messages").textContent);
const SVG_NS = "http://www.w3.org/2000/svg";
const PAUSE_REASONS = ["break", "lunch", "training", "meeting", "acw", "coaching"];
const FOLD_CALLERS = 6;   // a busy tile shows this many callers, then "+N more"
const FOLD_MEMBERS = 10;

let view = null;
let may = new Set();
const expanded = new Set();  // tiles ("server|queue|callers" / "|members") the user unfolded
// The tiles are redrawn on every frame; a frame arriving between pressing and releasing a button would
// replace that button and lose the click, so frames wait while the pointer is down.
let holding = false;
let pending = false;
document.addEventListener("pointerdown", () => { holding = true; }, true);
document.addEventListener("pointerup", () => {
  holding = false;
  if (pending) { pending = false; setTimeout(render, 50); }
}, true);

// A message in this page's language; English plurals pick `one` for n = 1. An unknown key shows itself.
function t(key, params = {}) {
  let value = MSG[key];
  if (value === undefined) return key;
  if (typeof value === "object") value = params.n === 1 ? value.one : value.other;
  return value.replace(/\{(\w+)\}/g, (all, name) => (params[name] === undefined ? all : String(params[name])));
}

const stateLabel = (state) => t(`view.state.${state}`);

// Times in the table's zone; dates as YYYY-MM-DD in both languages (no 01/12 vs 12/01 doubt).
function clockOf(ts, withDate = false) {
  const opts = { timeZone: ZONE, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(opts, { year: "numeric", month: "2-digit", day: "2-digit" });
  return new Intl.DateTimeFormat("sv-SE", opts).format(new Date(ts * 1000));
}

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
  renderBanners();
  renderTotals();
  renderQueues();
  renderLines();
}

function renderServers() {
  const box = document.getElementById("servers");
  box.replaceChildren(...view.servers.map((s) =>
    el("span", { class: `server-chip ${s.connected ? "up" : "down"}`, "data-server": s.name, title: s.connected ? t("view.link.up") : t("view.link.down_title") },
      el("i"), s.name)));
}

// One banner per server whose AMI link is down: which, since when (local time), and that its figures froze.
function renderBanners() {
  const box = document.getElementById("banner-links");
  box.replaceChildren(...view.servers.filter((s) => !s.connected).map((s) => {
    const since = s.down_since ? clockOf(s.down_since, true) : "?";
    const key = s.synced_at === null ? "view.banner.never" : "view.banner.down";
    return el("div", { class: "banner banner-down", role: "alert", "data-server": s.name },
      el("b", {}, t(key, { server: s.name, since: `${since} (${ZONE})` })), " ", t("view.banner.frozen"));
  }));
}

function renderTotals() {
  if (!view.servers.length) { document.getElementById("totals").replaceChildren(); return; }  // first run: the hint only
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
  const b = view.backlog || {};
  const backlogHint = !b.available ? t("view.kpi.backlog_none") : b.error ? t("view.kpi.backlog_error")
    : t("view.kpi.backlog_hint", { at: b.at ? clockOf(b.at) : "?" });
  const backlogValue = (v) => (b.available && !b.error ? v : "–");
  const box = document.getElementById("totals");
  box.replaceChildren(
    kpi(t("view.kpi.waiting_now"), waiting, waiting ? "warn" : "", { "data-kpi": "waiting" }),
    kpi(t("view.kpi.longest"), dur(longest), longest > SL ? "bad" : ""),
    kpi(t("view.kpi.sl", { sl: SL }), pct(sl), slClass(sl)),
    kpi(t("view.kpi.answered_today"), answered),
    kpi(t("view.kpi.abandoned_today"), abandoned, abandoned ? "warn" : ""),
    kpi(t("view.kpi.overflowed_today"), overflowed),
    kpi(t("view.kpi.in_ivr"), view.in_ivr, "", { title: t("view.kpi.in_ivr_hint"), "data-kpi": "in-ivr" }),
    kpi(t("view.kpi.callbacks"), backlogValue(b.callbacks_pending), b.callbacks_pending ? "warn" : "", { title: backlogHint, "data-kpi": "callbacks" }),
    kpi(t("view.kpi.workorders"), backlogValue(b.workorders_overdue), b.workorders_overdue ? "bad" : "", { title: backlogHint, "data-kpi": "workorders" }),
    kpi(t("view.kpi.agents_free"), agents.free, "good"),
    kpi(t("view.state.busy"), agents.busy),
    kpi(t("view.state.paused"), agents.paused, agents.paused ? "warn" : ""),
    kpi(t("view.state.unavailable"), agents.unavailable, ""),
  );
}

function kpi(label, value, tone = "", attrs = {}) {
  return el("div", { class: `kpi ${tone}`, ...attrs }, el("b", {}, value), el("span", {}, label));
}

function renderQueues() {
  const box = document.getElementById("queues");
  const tiles = [];
  for (const s of view.servers) for (const q of s.queues) tiles.push(tile(s, q));
  if (!view.servers.length) {
    tiles.push(el("div", { class: "firstrun", id: "firstrun" }, el("h2", {}, t("view.firstrun.title")), el("p", {}, t("view.firstrun.body"))));
  } else if (!tiles.length) {
    const up = view.servers.some((s) => s.connected);
    tiles.push(el("p", { class: "empty" }, up ? t("view.noqueues") : t("view.connecting")));
  }
  box.replaceChildren(...tiles);
}

function foldToggle(key, hidden, moreKey) {
  const open = expanded.has(key);
  return el("li", { class: "more" }, el("button", {
    class: "link fold", "aria-expanded": open ? "true" : "false",
    onclick: () => { if (open) expanded.delete(key); else expanded.add(key); render(); },
  }, open ? t("view.tile.fewer") : t(moreKey, { n: hidden })));
}

function tile(server, q) {
  const hot = q.longest_wait > SL && server.connected;
  const article = el("article", { class: `tile${hot ? " hot" : ""}${server.connected ? "" : " stale"}`, "data-server": server.name, "data-queue": q.name });
  const title = el("h2", {}, q.title || q.name);
  article.append(
    el("header", {}, title, el("span", { class: "server" }, q.title && q.title !== q.name ? `${q.name} · ${server.name}` : server.name)),
    server.connected ? "" : el("p", { class: "stale-note" }, t("view.stale", { server: server.name })),
    pendingCallbacks(q),
    el("div", { class: "kpis" },
      kpi(t("view.kpi.waiting"), q.waiting, q.waiting ? "warn" : ""),
      kpi(t("view.kpi.longest_short"), dur(q.longest_wait), hot ? "bad" : ""),
      kpi(t("view.kpi.sl_today"), pct(q.service_level), slClass(q.service_level)),
      kpi(t("view.kpi.answered"), q.answered),
      kpi(t("view.kpi.abandoned"), q.abandoned, q.abandoned ? "warn" : ""),
      kpi(t("view.kpi.overflowed"), q.overflowed)),
    stateBar(q.members_by_state),
  );
  const callers = el("ul", { class: "callers" });
  const ckey = `${server.name}|${q.name}|callers`;
  const shown = expanded.has(ckey) ? q.callers : q.callers.slice(0, FOLD_CALLERS);
  shown.forEach((c, i) => callers.append(el("li", { class: `caller${c.wait > SL ? " over" : ""}${i === 0 ? " first" : ""}`, "data-id": c.id },
    el("span", { class: "wait" }, dur(c.wait)),
    el("span", { class: "line", title: c.service || "" }, c.line || "?"),
    el("span", { class: "number" }, c.number || t("view.tile.unknown_number")),
    el("span", { class: "name", title: c.service || "" }, c.service || c.name, c.service && c.name ? el("small", {}, ` · ${c.name}`) : null))));
  if (q.callers.length > FOLD_CALLERS) callers.append(foldToggle(ckey, q.callers.length - FOLD_CALLERS, "view.tile.more"));
  if (!q.callers.length) callers.append(el("li", { class: "none" }, t("view.tile.no_callers")));
  article.append(el("h3", {}, t("view.tile.callers")), callers);

  const members = el("ul", { class: "members" });
  const mkey = `${server.name}|${q.name}|members`;
  const shownMembers = expanded.has(mkey) ? q.members : q.members.slice(0, FOLD_MEMBERS);
  for (const m of shownMembers) members.append(memberRow(server, q, m));
  if (q.members.length > FOLD_MEMBERS) members.append(foldToggle(mkey, q.members.length - FOLD_MEMBERS, "view.tile.more_agents"));
  if (!q.members.length) members.append(el("li", { class: "none" }, t("view.tile.no_members")));
  article.append(el("h3", {}, t("view.tile.agents")), members);
  if (may.has("add") && server.connected) article.append(el("footer", {}, el("button", { class: "link", onclick: () => addDialog(server, q) }, t("view.tile.add"))));
  return article;
}

// the records' pending callbacks for this queue (polled every 30 s), so the wallboard shows where they pile up
function pendingCallbacks(q) {
  const b = view.backlog || {};
  const n = b.available && !b.error && b.callbacks_by_queue ? b.callbacks_by_queue[q.name] || 0 : 0;
  return n ? el("p", { class: "tile-callbacks", "data-callbacks": n }, t("view.tile.callbacks", { n })) : "";
}

function stateBar(by) {
  const total = Object.values(by).reduce((a, b) => a + b, 0) || 1;
  const bar = el("div", { class: "statebar", title: Object.entries(by).map(([k, v]) => `${v} ${stateLabel(k)}`).join(", ") });
  for (const key of ["free", "busy", "paused", "unavailable"]) {
    if (!by[key]) continue;
    const part = el("span", { class: `st-${key}` }, `${by[key]} ${stateLabel(key)}`);
    part.style.flexGrow = String(by[key] / total);
    bar.append(part);
  }
  return bar;
}

function memberRow(server, q, m) {
  const base = { server: server.name, queue: q.name, interface: m.interface };
  let label = stateLabel(m.state);
  if (m.state === "busy" && m.ringing) label = t("view.state.ringing");
  let detail = t("view.member.for", { state: label, dur: dur(m.state === "busy" && m.talk_for !== null ? m.talk_for : m.state_for) });
  if (m.state === "paused") detail = `${t("view.member.for", { state: label, dur: dur(m.paused_for ?? m.state_for) })}${m.reason ? ` · ${m.reason}` : ""}`;
  const buttons = el("span", { class: "actions" });
  if (server.connected) {
    if (m.state === "paused" && may.has("unpause")) buttons.append(el("button", { class: "unpause", onclick: () => act("unpause", base) }, t("view.act.unpause")));
    if (m.state !== "paused" && may.has("pause")) buttons.append(el("button", { class: "pause", onclick: () => pauseDialog(base, m) }, t("view.act.pause")));
    if (m.state === "busy" && may.has("listen")) {
      for (const kind of ["listen", "whisper", "barge"]) if (may.has(kind)) buttons.append(el("button", { class: kind, onclick: () => spyDialog(kind, base, m) }, t(`view.act.${kind}`)));
    }
    if (may.has("remove")) buttons.append(el("button", { class: "remove", title: t("view.act.remove"), "aria-label": t("view.act.remove"), onclick: () => removeDialog(base, m, q) }, "×"));
  }
  const talk = m.talk_today ? t("view.member.talk", { dur: dur(m.talk_today) }) : "";
  const calls = m.calls_taken ? t("view.member.calls", { n: m.calls_taken }) : "";
  return el("li", { class: `member st-${m.state}`, "data-interface": m.interface, "data-state": m.state },
    el("i", { class: "dot" }),
    el("span", { class: "mname", title: m.interface }, m.name),
    el("span", { class: "mstate" }, detail),
    el("span", { class: "calls", title: t("view.member.calls_hint") }, [calls, talk].filter(Boolean).join(" · ")),
    buttons);
}

function renderLines() {
  const body = document.querySelector("#lines tbody");
  const rows = view.lines.map((r) => {
    const offered = r.answered + r.abandoned;
    const sl = offered ? r.answered_in_sl / offered : null;
    return el("tr", { "data-line": r.line }, el("td", { title: r.service || "" }, r.line, r.service ? el("small", { class: "service" }, r.service) : null),
      el("td", { class: r.waiting ? "warn" : "" }, r.waiting),
      el("td", {}, r.answered), el("td", {}, r.abandoned), el("td", {}, r.overflowed),
      el("td", { class: slClass(sl) }, pct(sl)));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 6, class: "none" }, t("view.lines.none"))));
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
    toast(data.message, data.ok);  // already in our words and language: Asterisk's reply is in the audit
    loadAudit();
  } catch (err) {
    toast(t("view.err.network"), false);
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
  // the reason goes to Asterisk and the audit as the supervisor reads it
  const select = el("select", { name: "reason_choice" }, PAUSE_REASONS.map((r) => el("option", { value: t(`view.reason.${r}`) }, t(`view.reason.${r}`))));
  openDialog(t("view.dialog.pause", { member: m.name }), [
    el("label", {}, `${t("view.dialog.reason")} `, select),
    el("label", {}, `${t("view.dialog.reason_text")} `, el("input", { name: "reason_text", maxlength: 64, placeholder: t("view.dialog.optional") })),
  ], (form) => act("pause", { ...base, reason: (form.get("reason_text") || "").trim() || form.get("reason_choice") }));
}

function spyDialog(kind, base, m) {
  const phone = localStorage.getItem("hotline.phone") || meta("user-phone");
  openDialog(t("view.dialog.spy", { kind: t(`view.act.${kind}`), member: m.name }), [
    el("p", {}, t(`view.dialog.spy_${kind}`)),
    el("label", {}, `${t("view.dialog.phone")} `, el("input", { name: "phone", value: phone, placeholder: "PJSIP/9001", required: true, pattern: "[A-Za-z0-9]+/.+" })),
  ], (form) => { localStorage.setItem("hotline.phone", form.get("phone")); act(kind, { ...base, phone: form.get("phone") }); });
}

function removeDialog(base, m, q) {
  const queue = q.title || q.name;
  openDialog(t("view.dialog.remove", { member: m.name, queue }), [el("p", {}, t("view.dialog.remove_body", { interface: m.interface, queue, server: base.server }))],
    () => act("remove", base));
}

function addDialog(server, q) {
  openDialog(t("view.dialog.add", { queue: q.title || q.name }), [
    el("label", {}, `${t("view.dialog.interface")} `, el("input", { name: "interface", placeholder: "PJSIP/7001", required: true })),
    el("label", {}, `${t("view.dialog.name")} `, el("input", { name: "member_name", placeholder: t("view.dialog.name") })),
    el("label", {}, `${t("view.dialog.penalty")} `, el("input", { name: "penalty", type: "number", min: 0, max: 100, value: 0 })),
  ], (form) => act("add", { server: server.name, queue: q.name, interface: form.get("interface"), member_name: form.get("member_name"), penalty: form.get("penalty") }));
}

async function loadAudit() {
  if (!may.has("audit")) return;
  const res = await fetch("/api/audit", { credentials: "same-origin" });
  if (!res.ok) return;
  const data = await res.json();
  document.getElementById("audit-panel").hidden = false;
  // `at` is UTC (ISO 8601, for machines): shown in the table's time zone; Asterisk's own reply only as a tooltip
  document.getElementById("audit").replaceChildren(...data.entries.slice(0, 12).map((e) => {
    const at = Date.parse(e.at) / 1000;
    const action = MSG[`view.act.${e.action}`] ? t(`view.act.${e.action}`) : e.action;
    return el("li", { class: e.result === "ok" ? "ok" : "err", title: e.message || "" },
      el("time", { datetime: e.at }, Number.isNaN(at) ? e.at : clockOf(at, true)),
      ` ${e.user} ${action} ${e.params.interface || ""} ${e.params.queue ? queueTitle(e.params.server, e.params.queue) : ""} · ${t(e.result === "ok" ? "view.audit.ok" : "view.audit.error")}`);
  }));
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
    if (!data.series.length) box.append(el("p", { class: "none" }, t("view.history.collecting")));
  } catch (err) { /* the next poll tries again */ }
}

function chart(series, now, span) {
  const W = 300, H = 86, P = 4, B = 14;
  const points = series.points;
  const maxWait = Math.max(2, ...points.map((p) => p[1]));
  const x = (t) => P + ((t - (now - span)) / span) * (W - 2 * P);
  const yw = (v) => H - B - (v / maxWait) * (H - B - P);
  const ys = (v) => H - B - v * (H - B - P);
  const title = queueTitle(series.server, series.queue);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("view.history.aria", { queue: title }) });
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
  root.append(label(`${t("view.lines.sl")} 100%`, P + 1, "start", "axis sl-axis", ys(1) + 8), label("50%", P + 1, "start", "axis sl-axis", ys(0.5) - 2));
  // the axis in the table's time zone: the start and the end of the window
  const hm = (ts) => new Intl.DateTimeFormat(LOCALE, { timeZone: ZONE, hour: "2-digit", minute: "2-digit", hour12: false }).format(new Date(ts * 1000));
  root.append(label(hm(now - span), P, "start"), label(hm(now), W - P, "end"), label(t("view.history.max", { n: maxWait }), W / 2, "middle"));
  return el("figure", { class: "chart-box", "data-queue": series.queue }, el("figcaption", {}, title, el("small", {}, ` ${series.queue} · ${series.server}`)), root);
}

// ---- wiring --------------------------------------------------------------------------------------------
function queueTitle(server, queue) {
  const s = view && view.servers.find((x) => x.name === server);
  const q = s && s.queues.find((x) => x.name === queue);
  return (q && q.title) || queue;
}

function clock() {
  document.getElementById("clock").textContent = `${clockOf(Date.now() / 1000)} ${t("view.clock.zone", { zone: ZONE })}`;
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
  document.getElementById("legend").replaceChildren(el("i", { class: "sw sw-wait" }), ` ${t("view.history.wait")} `,
    el("i", { class: "sw sw-sl" }), ` ${t("view.history.sl", { sl: SL })}`, el("small", { class: "zone" }, ` · ${ZONE}`));
  document.querySelector("#audit-panel h2").append(el("small", { class: "zone" }, ZONE));
  for (const option of document.querySelectorAll("#range option")) option.textContent = t("view.history.hours", { n: Number(option.value) });
  connect();
  clock();
  setInterval(clock, 1000);
  loadHistory();
  setInterval(loadHistory, 15000);
  document.getElementById("range").addEventListener("change", loadHistory);
  fetch("/api/state", { credentials: "same-origin" }).then((r) => r.json()).then((v) => { may = new Set(v.user.may); loadAudit(); }).catch(() => {});
});
