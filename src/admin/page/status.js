// The databay status page: polls one page of links (filtered on the
// server) every 2 s with If-None-Match, redraws only what changed, and sends
// actions as POSTs carrying the token the server put in the page.
"use strict";
(() => {
  const token = document.querySelector('meta[name="databay-token"]').content;
  const $ = (id) => document.getElementById(id);
  const view = { q: "", state: "", offset: 0, limit: 50 };
  const POLL_MS = 2000;
  let bearer = sessionStorage.getItem("databay-bearer") || "";
  let etag = null;
  let detail = null; // { name, etag }
  let last = null;

  function headers(extra) {
    const h = Object.assign({}, extra);
    if (bearer) h.Authorization = "Bearer " + bearer;
    return h;
  }

  function askToken() {
    $("auth").hidden = false;
    $("bearer").focus();
  }

  async function get(path, tag) {
    const r = await fetch(path, { headers: headers(tag ? { "If-None-Match": tag } : {}), cache: "no-store" });
    if (r.status === 401) { askToken(); throw new Error("the endpoint needs its token"); }
    if (r.status === 304) return null;
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return { body, etag: r.headers.get("ETag") };
  }

  async function post(path) {
    const r = await fetch(path, { method: "POST", headers: headers({ "X-Databay-Token": token }) });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401) askToken();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // A bar per value; bars whose `marks` entry is non-zero get class "e".
  function bars(svg, values, marks) {
    const w = svg.clientWidth || 120, h = svg.clientHeight || 24;
    const ns = "http://www.w3.org/2000/svg";
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.replaceChildren();
    const max = Math.max(1, ...values);
    const n = Math.max(values.length, 60);
    const bw = w / n;
    values.forEach((v, i) => {
      if (!v && !(marks && marks[i])) return;
      const r = document.createElementNS(ns, "rect");
      const bh = Math.max(1, (v / max) * (h - 2));
      r.setAttribute("x", ((n - values.length + i) * bw).toFixed(2));
      r.setAttribute("y", (h - bh).toFixed(2));
      r.setAttribute("width", Math.max(1, bw - 0.5).toFixed(2));
      r.setAttribute("height", bh.toFixed(2));
      if (marks && marks[i]) r.setAttribute("class", "e");
      svg.append(r);
    });
    svg.dataset.points = String(svg.childElementCount);
    const title = document.createElementNS(ns, "title");
    title.textContent = `max ${max}`;
    svg.append(title);
  }

  function ago(t) {
    if (!t) return "–";
    const s = Math.round((Date.parse(t) - Date.now()) / 1000);
    const a = Math.abs(s);
    if (a < 1) return "now";
    const text = a < 60 ? `${a}s` : a < 3600 ? `${Math.round(a / 60)}m` : `${Math.round(a / 3600)}h`;
    return s < 0 ? `${text} ago` : `in ${text}`;
  }

  function row(l) {
    const name = el("td", { class: "name" }, el("a", { "data-open": l.name, text: l.name }));
    for (const t of l.tags) if (t !== l.name) name.append(el("span", { class: "tag", text: t }));
    const state = el("span", { class: `state ${l.status}`, text: l.status });
    const stateCell = el("td", { class: "status" }, state);
    if (l.status === "failing" && l.backoff_until) stateCell.append(" ", el("span", { class: "tag", text: `retry ${ago(l.backoff_until)}` }));
    const errors = el("td", { class: "n errors" }, String(l.errors));
    if (l.last_error) errors.append(" ", el("span", { class: "err-text", title: l.last_error, text: l.last_error }));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "chart");
    const paused = l.status === "paused";
    const tr = el("tr", { "data-link": l.name },
      name,
      el("td", { text: l.schedule }),
      stateCell,
      el("td", { title: l.last_success || "", text: ago(l.last_success) }),
      el("td", { title: l.next_transfer || "", text: ago(l.next_transfer) }),
      el("td", { class: "n records-in", text: String(l.records_in) }),
      el("td", { class: "n records-out", text: String(l.records_out) }),
      el("td", { class: "n dropped", text: String(l.records_dropped) }),
      errors,
      el("td", { text: l.lateness_p99 || "–" }),
      el("td", {}, svg),
      el("td", {},
        el("button", { type: "button", class: "transfer", "data-act": "transfer", text: "Transfer now" }), " ",
        el("button", { type: "button", class: paused ? "resume" : "pause", "data-act": paused ? "resume" : "pause", text: paused ? "Resume" : "Pause" })));
    return { tr, svg, l };
  }

  function render(page) {
    // When the first rows showed, for benches (ms since navigation).
    if (!last) document.body.dataset.firstRender = String(Math.round(performance.now()));
    last = page;
    $("summary").replaceChildren(
      el("span", { text: `${page.total} links` }),
      ...Object.entries(page.statuses).map(([s, n]) => el("span", { class: `state ${s}`, text: `${n} ${s}` })));
    const from = page.matched ? page.offset + 1 : 0;
    $("range").textContent = `${from}–${page.offset + page.links.length} of ${page.matched}`;
    $("prev").disabled = page.offset === 0;
    $("next").disabled = page.offset + page.links.length >= page.matched;
    const rows = page.links.map(row);
    $("links").tBodies[0].replaceChildren(...rows.map((r) => r.tr));
    for (const r of rows) bars(r.svg, r.l.history.records_in, r.l.history.errors);
    const d = page.daemon, per = (v) => v / d.step_seconds;
    bars($("daemon-transfers"), d.transfers.map(per));
    bars($("daemon-errors"), d.errors.map(per));
    const lastOf = (a) => (a.length ? per(a[a.length - 1]).toFixed(1) : "0");
    $("daemon-transfers-now").textContent = lastOf(d.transfers);
    $("daemon-errors-now").textContent = lastOf(d.errors);
  }

  function renderDetail(d) {
    const l = d.link, box = $("detail");
    const table = (head, rows) => el("table", {}, el("tr", {}, ...head.map((h) => el("th", { text: h }))),
      ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", { text: String(c) })))));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "chart wide");
    const shape = l.summary;
    box.replaceChildren(
      el("button", { type: "button", class: "close", "data-close": "1", text: "×" }),
      el("h2", { text: l.name }),
      el("div", {}, el("span", { class: `state ${d.status}`, text: d.status }), ` ${l.schedule}`),
      el("h3", { text: "records in per minute, last hour" }), svg,
      shape ? el("h3", { text: "pipeline" }) : null,
      shape ? table(["inlets", "processors", "groupers", "outlets"], [[shape.inlets.join(", ") || "–", shape.processors.join(", ") || "–", shape.groupers.join(", ") || "–", shape.outlets.join(", ") || "–"]]) : null,
      el("h3", { text: "components" }),
      table(["kind", "#", "name", "calls", "records", "errors", "failed", "rejected"],
        l.components.map((c) => [c.kind, c.index, c.name, c.calls, c.records, c.errors, c.records_failed, c.records_rejected])),
      l.processors.length ? el("h3", { text: "operator state" }) : null,
      l.processors.length ? table(["#", "processor", "state"], l.processors.map((p) => [p.index, p.name, p.gauges.map((g) => `${g.name} ${g.value}`).join(", ")])) : null,
      el("h3", { text: "counters" }),
      table(Object.keys(l.counters), [Object.values(l.counters)]),
      el("h3", { text: `last errors (${d.errors.length})` }),
      d.errors.length ? el("ol", {}, ...d.errors.map((e) => el("li", { text: `${e.seen} ×${e.count}: ${e.message}` }))) : el("p", { text: "none seen" }));
    box.hidden = false;
    bars(svg, d.history.records_in, d.history.errors);
  }

  function query() {
    const p = new URLSearchParams({ offset: view.offset, limit: view.limit });
    if (view.q) p.set("q", view.q);
    if (view.state) p.set("state", view.state);
    return `/ui/links?${p}`;
  }

  let polling = null;
  async function refresh() {
    try {
      const got = await get(query(), etag);
      if (got) { etag = got.etag; render(got.body); }
      if (detail) {
        const d = await get(`/ui/links/${encodeURIComponent(detail.name)}`, detail.etag);
        if (d) { detail.etag = d.etag; renderDetail(d.body); }
      }
      $("message").textContent = "";
    } catch (e) {
      $("message").textContent = String(e.message || e);
    }
  }

  function schedule() {
    clearTimeout(polling);
    // A hidden tab costs the daemon nothing.
    polling = setTimeout(async () => { if (!document.hidden) await refresh(); schedule(); }, POLL_MS);
  }

  async function now() {
    etag = null;
    if (detail) detail.etag = null;
    await refresh();
    schedule();
  }

  async function act(path) {
    try {
      await post(path);
      await now();
    } catch (e) {
      $("message").textContent = String(e.message || e);
    }
  }

  $("links").addEventListener("click", (ev) => {
    const open = ev.target.closest("[data-open]");
    if (open) { detail = { name: open.dataset.open, etag: null }; now(); return; }
    const b = ev.target.closest("button[data-act]");
    if (!b) return;
    const name = b.closest("tr").dataset.link;
    act(`/links/${encodeURIComponent(name)}/${b.dataset.act}`);
  });
  $("detail").addEventListener("click", (ev) => {
    if (ev.target.closest("[data-close]")) { detail = null; $("detail").hidden = true; }
  });
  for (const a of ["transfer", "pause", "resume"]) $(`${a}-all`).addEventListener("click", () => act(`/all/${a}`));
  let typing = null;
  $("q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { view.q = $("q").value.trim(); view.offset = 0; now(); }, 250);
  });
  $("state").addEventListener("change", () => { view.state = $("state").value; view.offset = 0; now(); });
  $("filter").addEventListener("submit", (ev) => ev.preventDefault());
  $("prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - view.limit); now(); });
  $("next").addEventListener("click", () => {
    if (last && view.offset + view.limit < last.matched) { view.offset += view.limit; now(); }
  });
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    bearer = $("bearer").value.trim();
    sessionStorage.setItem("databay-bearer", bearer);
    $("auth").hidden = true;
    now();
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) now(); });
  now();
})();
