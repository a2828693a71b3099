// The agents panel (supervisor/web_agents.py): each agent of agents.yaml, its queues by name, whether it is
// logged in, and Log in / Log out buttons for roles that may add / remove members. Texts come from the server
// in the user's language (zh default, en). Built with textContent only: names never become markup.
"use strict";
(() => {
  const panel = document.getElementById("agents-panel");
  if (!panel) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let texts = {};
  let busy = false;

  const t = (key, params = {}) => {
    let value = texts[key] || key;
    if (typeof value === "object") value = params.n === 1 ? value.one : value.other;
    return value.replace(/\{(\w+)\}/g, (_, k) => (k in params ? params[k] : `{${k}}`));
  };
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };
  const note = (text, ok) => {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = text;
    box.className = `toast show ${ok ? "ok" : "err"}`;
    clearTimeout(note.timer);
    note.timer = setTimeout(() => { box.className = "toast"; }, 4000);
  };

  async function act(agent, kind, server, queues) {
    const question = t(kind === "login" ? "agents.confirm_login" : "agents.confirm_logout",
                       { agent: agent.name, queues });
    if (!window.confirm(question)) return;
    busy = true;
    try {
      const res = await fetch(`/api/agents/${encodeURIComponent(agent.number)}/${kind}`, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ server }),
      });
      const data = await res.json();
      note(data.message, data.ok);
    } catch (err) {
      note(String(err), false);
    } finally {
      busy = false;
      refresh();
    }
  }

  function render(data) {
    texts = data.texts || {};
    const head = el("h2", { text: t("agents.title") });
    if (!data.agents.length) {
      panel.replaceChildren(head, el("p", { class: "empty", text: data.problem || t("agents.none") }));
      return;
    }
    const table = el("table", { class: "lines agents" });
    table.append(el("thead", {}, el("tr", {},
      el("th", { text: t("agents.agent") }), el("th", { text: t("agents.queues") }),
      el("th", { text: t("agents.state") }), el("th", { text: "" }))));
    const body = el("tbody");
    for (const agent of data.agents) {
      for (const server of data.servers) {
        const inQueues = agent.logged_in[server] || [];
        const total = agent.queues.length;
        const state = inQueues.length === total ? t("agents.logged_in")
          : inQueues.length ? t("agents.partly", { n: inQueues.length, total }) : t("agents.logged_out");
        const names = agent.queues.map((q) => q.name).join("、");
        const who = el("td", {}, el("b", { text: agent.name }), el("br"),
          el("small", { text: `${agent.number}${data.servers.length > 1 ? " · " + server : ""}` }));
        if (agent.skills.length) who.append(el("br"), el("small", { class: "skills",
          text: `${t("agents.skills")}: ${agent.skills.join(", ")}` }));
        const queues = el("td");
        for (const q of agent.queues) {
          queues.append(el("div", { class: inQueues.includes(q.id) ? "in" : "out",
            text: `${q.name} (${t("agents.penalty", { n: q.penalty })})` }));
        }
        const buttons = el("td", { class: "actions" });
        if (data.may.login && inQueues.length < total) {
          const b = el("button", { type: "button", "data-agent": agent.number, "data-kind": "login",
                                   text: t("agents.login") });
          b.addEventListener("click", () => act(agent, "login", server, names));
          buttons.append(b);
        }
        if (data.may.logout && inQueues.length) {
          const b = el("button", { type: "button", "data-agent": agent.number, "data-kind": "logout",
                                   text: t("agents.logout") });
          b.addEventListener("click", () => act(agent, "logout", server, names));
          buttons.append(b);
        }
        body.append(el("tr", { "data-agent": agent.number, "data-state":
          inQueues.length === total ? "in" : inQueues.length ? "partly" : "out" },
          who, queues, el("td", { class: "state", text: state }), buttons));
      }
    }
    table.append(body);
    panel.replaceChildren(head, table);
  }

  async function refresh() {
    if (busy) return;
    try {
      // the server picks the language: the user's choice (cookie hotline_lang), else the browser's
      const res = await fetch("/api/agents", { credentials: "same-origin" });
      if (res.ok) render(await res.json());
    } catch (err) { /* the live view shows the connection state; try again on the next tick */ }
  }
  refresh();
  setInterval(refresh, 2000);
})();
