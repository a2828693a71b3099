// Override switches: a banner for every active switch (all roles), and for admins a panel to flip them.
// Texts come from /api/switches in the page's language (html lang). Polled every 5 s and after each flip.
(function () {
  "use strict";
  var POLL_MS = 5000;
  var slot = document.getElementById("banners");
  if (!slot) return;
  var root = document.createElement("div");   // our own child: the link-down banners live beside it
  root.id = "banner-switches";
  slot.appendChild(root);
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/static/switches.css";
  document.head.appendChild(css);
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var openForms = {};

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function lang() { return (document.documentElement.lang || "zh").split("-")[0]; }

  function render(data) {
    var banners = el("div", "switch-banners");
    data.switches.forEach(function (s) {
      if (!s.on) return;
      var b = el("div", "switch-banner", s.banner);
      b.setAttribute("role", "alert");
      b.dataset.switch = s.name;
      banners.appendChild(b);
    });
    var nodes = [banners];
    if (data.error) {
      if (data.may_flip) nodes.push(el("p", "switch-error", data.error));
    } else if (data.may_flip) nodes.push(panel(data));
    root.replaceChildren.apply(root, nodes);
  }

  function panel(data) {
    var L = data.labels;
    var box = el("details", "switch-panel");
    box.open = Object.keys(openForms).length > 0 || root.dataset.panelOpen === "1";
    box.addEventListener("toggle", function () { root.dataset.panelOpen = box.open ? "1" : "0"; });
    box.appendChild(el("summary", null, L.panel));
    data.switches.forEach(function (s) {
      var form = el("form", "switch-row" + (s.on ? " is-on" : ""));
      form.dataset.switch = s.name;
      form.appendChild(el("span", "switch-state", s.on ? L.state_on : L.state_off));
      form.appendChild(el("b", "switch-title", s.title));
      form.appendChild(el("span", "switch-effects", s.effects + " · *95" + s.code + " / *96" + s.code));
      if (s.by) form.appendChild(el("span", "switch-last", L.last + ": " + s.by + " " + s.at + " — " + s.why));
      var why = el("input");
      why.name = "why"; why.placeholder = L.why; why.required = true; why.maxLength = 500;
      form.appendChild(why);
      if (!s.on) {
        var until = el("input");
        until.name = "until"; until.placeholder = L.until; until.size = 30;
        form.appendChild(until);
      }
      var go = el("button", null, s.on ? L.turn_off : L.turn_on);
      go.type = "submit";
      form.appendChild(go);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        flip(s.name, s.on ? "off" : "on", form);
      });
      box.appendChild(form);
    });
    return box;
  }

  function say(message, bad) {
    var toast = document.getElementById("toast");
    if (!toast) return;
    toast.textContent = message;
    toast.className = "toast show " + (bad ? "err" : "ok");
    setTimeout(function () { toast.className = "toast"; }, 4000);
  }

  function flip(name, word, form) {
    var body = new URLSearchParams(new FormData(form));
    fetch("/api/switches/" + encodeURIComponent(name) + "/" + word + "?lang=" + lang(), {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"}
    }).then(function (r) { return r.json(); }).then(function (res) {
      say(res.message, !res.ok);
      refresh();
    }).catch(function () { say("?", true); });
  }

  function refresh() {
    return fetch("/api/switches?lang=" + lang(), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(render)
      .catch(function () { /* the live view goes on; the next poll tries again */ });
  }

  window.hotlineSwitches = {refresh: refresh};
  refresh();
  setInterval(function () {
    // not while an admin is typing a reason: the panel would be rebuilt under the cursor
    if (!root.contains(document.activeElement) || document.activeElement === document.body) refresh();
  }, POLL_MS);
})();
