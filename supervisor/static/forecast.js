// The forecast page: fetch the report for the form's period and target into the page, keep the URL in step.
"use strict";
(function () {
  const form = document.getElementById("forecast-form");
  const target = document.getElementById("forecast");
  async function load() {
    const params = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...params]) if (!v) params.delete(k);
    target.setAttribute("aria-busy", "true");
    target.replaceChildren(Object.assign(document.createElement("p"), {className: "empty", textContent: target.dataset.loading}));
    try {
      const r = await fetch("/forecast/section?" + params, {credentials: "same-origin"});
      if (r.status === 401) { location.href = "/login"; return; }
      target.innerHTML = await r.text();   // server-rendered, every value escaped there
    } catch (e) {
      target.replaceChildren(Object.assign(document.createElement("p"), {className: "error", textContent: String(e)}));
    } finally {
      target.removeAttribute("aria-busy");
    }
    history.replaceState(null, "", "/forecast?" + params);
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  // the other language keeps the period and target being looked at (the page is rendered in it anew)
  const other = document.getElementById("other-lang");
  other.addEventListener("click", (ev) => {
    ev.preventDefault();
    form.elements.lang.value = new URL(other.href).searchParams.get("lang");
    form.submit();
  });
  load();
})();
