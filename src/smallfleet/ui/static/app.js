// smallfleet dashboard: hash-routed pages over /ui/api (no build step). Every number shown comes from the API,
// which computes it with `smallfleet report`'s definitions.
"use strict";

const $ = (sel) => document.querySelector(sel);
const page = $("#page");
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const pct = (v) => (v === null || v === undefined ? "-" : (100 * v).toFixed(1) + "%");
const usd = (v) => (v === null || v === undefined ? "-" : "$" + Number(v).toFixed(6));
const ms = (v) => (v === null || v === undefined ? "-" : Number(v).toFixed(1) + " ms");
const when = (t) => new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19);

$("#key").value = sessionStorage.getItem("smallfleet-key") || "";
$("#key").addEventListener("change", (e) => { sessionStorage.setItem("smallfleet-key", e.target.value); route(); });
$("#hours").value = sessionStorage.getItem("smallfleet-hours") || "24";
$("#hours").addEventListener("change", (e) => { sessionStorage.setItem("smallfleet-hours", e.target.value); route(); });

async function api(path, options = {}) {
  const key = $("#key").value;
  const headers = {...(options.headers || {}), ...(key ? {authorization: "Bearer " + key} : {})};
  const sep = path.includes("?") ? "&" : "?";
  const url = options.method ? path : `${path}${sep}hours=${encodeURIComponent($("#hours").value)}`;
  const response = await fetch(url, {...options, headers});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function card(key, value, id) {
  return `<div class="card"><div class="v" data-figure="${id}">${esc(value)}</div><div class="k">${esc(key)}</div></div>`;
}

function table(headers, rows) {
  return `<table><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>${rows.join("")}</table>`;
}

function chart(target, title, xs, series, time = true) {
  const el = document.createElement("div");
  el.className = "chart";
  target.appendChild(el);
  if (!xs.length) { el.textContent = `${title}: no data in this window`; return; }
  const colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756"];
  new uPlot({title, width: 560, height: 220,
    series: [{}, ...series.map((s, i) => ({label: s.label, stroke: colors[i % colors.length], width: 2,
      points: {show: xs.length < 60}}))],
    scales: {x: {time}}}, [xs, ...series.map((s) => s.values)], el);
}

async function overview() {
  const d = await api("/ui/api/overview");
  page.innerHTML = `<h2>Overview</h2><div class="cards">
    ${card("requests", d.requests, "requests")}${card("local share", pct(d.local_share), "local_share")}
    ${card("cost", usd(d.cost_usd), "cost_usd")}${card("all-top-rung cost", usd(d.cost_all_top_rung_usd), "cost_all_top_rung_usd")}
    ${card("latency p50", ms(d.latency_ms.p50), "p50")}${card("latency p95", ms(d.latency_ms.p95), "p95")}
    ${card("latency p99", ms(d.latency_ms.p99), "p99")}${card("error rate", pct(d.error_rate), "error_rate")}
    ${card("429 rate", pct(d.rejected_rate), "rejected_rate")}</div><div id="charts"></div>
    <h3>Contracts</h3>${table(["contract", "requests", "local share", "cost", "all-top-rung cost"], d.contracts.map((c) =>
      `<tr><td><a href="#/contracts/${encodeURIComponent(c.contract)}">${esc(c.contract)}</a></td><td class="num">${c.requests}</td>
       <td class="num" data-local="${esc(c.contract)}">${pct(c.local_share)}</td><td class="num">${usd(c.cost_usd)}</td>
       <td class="num">${usd(c.cost_all_top_rung_usd)}</td></tr>`))}`;
  const xs = d.series.map((r) => r.t);
  const charts = $("#charts");
  chart(charts, "Requests and errors", xs, [{label: "requests", values: d.series.map((r) => r.requests)},
    {label: "errors", values: d.series.map((r) => Math.round((r.error_rate || 0) * r.requests))}]);
  chart(charts, "Local share", xs, [{label: "local share", values: d.series.map((r) => r.local_share)}]);
  chart(charts, "Cost vs all-top-rung (USD)", xs, [{label: "cost", values: d.series.map((r) => r.cost_usd)},
    {label: "all top rung", values: d.series.map((r) => r.cost_all_top_rung_usd)}]);
  chart(charts, "Mean latency (ms)", xs, [{label: "mean latency", values: d.series.map((r) => r.latency_mean_ms)}]);
}

async function contract(name) {
  const d = await api(`/ui/api/contracts/${encodeURIComponent(name)}`);
  const s = d.summary || {requests: 0};
  const max = Math.max(1, ...d.escalations.map((e) => e.n));
  page.innerHTML = `<h2>Contract ${esc(name)}</h2><div class="cards">${card("requests", s.requests, "requests")}
    ${card("local share", pct(s.local_share), "local_share")}${card("cost", usd(s.cost_usd), "cost_usd")}
    ${card("all-top-rung cost", usd(s.cost_all_top_rung_usd), "cost_all_top_rung_usd")}${card("served version", d.version, "version")}</div>
    <h3>Ladder</h3>${table(["rung", "model", "location", "accept rule in force"], d.ladder.map((r) =>
      `<tr><td>${r.rung}</td><td>${esc(r.model)}</td><td>${esc(r.location)}</td><td><pre>${esc(JSON.stringify(r.rule))}</pre></td></tr>`))}
    <h3>Answers per rung</h3>${table(["rung", "model", "answers", "share", "mean latency"], d.rungs.map((r) =>
      `<tr><td>${r.rung}</td><td>${esc(r.model)}</td><td class="num">${r.answers}</td><td class="num" data-rung-share="${r.rung}">${pct(r.share)}</td><td class="num">${ms(r.latency_mean_ms)}</td></tr>`))}
    <h3>Escalation reasons</h3>${table(["reason", "requests", ""], d.escalations.map((e) =>
      `<tr><td><a href="#/traces?contract=${encodeURIComponent(name)}&reason=${encodeURIComponent(e.reason)}">${esc(e.reason)}</a></td>
       <td class="num" data-reason="${esc(e.reason)}">${e.n}</td><td><span class="bar" style="width:${(200 * e.n / max).toFixed(0)}px"></span></td></tr>`))}
    <h3>Calibration</h3><div id="calibration">${d.calibration ? "" : "<p>Not calibrated (`smallfleet calibrate`).</p>"}</div>
    <h3>Specialists</h3>${d.specialists.length ? table(["version", "kind", "served", "gate", ""], d.specialists.map((v) =>
      `<tr><td>${esc(v.version)}</td><td>${esc(v.kind)}</td><td data-served="${esc(v.version)}">${v.promoted ? "yes" : ""}</td>
       <td><pre>${esc(JSON.stringify(v.gate))}</pre></td><td>${v.promoted ? `<button data-rollback>Roll back</button>`
         : `<button data-promote="${esc(v.version)}">Promote</button>`}</td></tr>`))
      : "<p>No specialist trained for this contract.</p>"}<p id="actionmsg"></p>`;
  const act = async (path, body) => {
    $("#actionmsg").textContent = "working...";
    try {
      await api(path, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
      route();
    } catch (err) { $("#actionmsg").innerHTML = `<span class="err">${esc(err.message)}</span>`; }
  };
  document.querySelectorAll("[data-promote]").forEach((b) => b.addEventListener("click", () =>
    act(`/ui/api/contracts/${encodeURIComponent(name)}/promote`, {version: b.dataset.promote})));
  document.querySelectorAll("[data-rollback]").forEach((b) => b.addEventListener("click", () =>
    act(`/ui/api/contracts/${encodeURIComponent(name)}/rollback`, {})));
  if (d.calibration) {
    for (const r of d.calibration.rungs) {
      const curve = (r.curve || []).slice().sort((a, b) => a.threshold - b.threshold);
      chart($("#calibration"), `Rung ${r.rung} (${r.model}): local share and agreement by threshold` +
        (r.threshold !== null && r.threshold !== undefined ? ` (chosen ${Number(r.threshold).toFixed(3)})` : ""),
        curve.map((p) => p.threshold), [{label: "local share", values: curve.map((p) => p.local_share)},
          {label: "agreement", values: curve.map((p) => p.agreement)}], false);
    }
  }
}

async function traces(params) {
  const q = new URLSearchParams(params);
  const d = await api(`/ui/api/traces?${q}`);
  const field = (k) => `<label>${k} <input name="${k}" value="${esc(q.get(k) || "")}" size="12"></label>`;
  page.innerHTML = `<h2>Traces</h2><form class="filters" id="filters">${["contract", "model", "status", "reason"].map(field).join("")}
    <button type="submit">Filter</button></form>
    ${table(["time", "id", "model / contract", "answered by", "rung", "status", "reason", "latency", "cost"], d.traces.map((t) =>
      `<tr><td>${when(t.created_at)}</td><td><a href="#/traces/${encodeURIComponent(t.id)}" data-trace="${esc(t.id)}">${esc(t.id.slice(0, 12))}</a></td>
       <td>${esc(t.contract || t.model)}</td><td>${esc(t.backend_model)}</td><td>${t.rung ?? ""}</td><td>${esc(t.status)} ${t.http_status}</td>
       <td>${esc(t.reason)}</td><td class="num">${ms(t.latency_ms)}</td><td class="num">${usd(t.cost)}</td></tr>`))}
    ${d.traces.length ? `<a href="#/traces?${new URLSearchParams({...Object.fromEntries(q), before: d.traces[d.traces.length - 1].created_at})}">older</a>` : "<p>No traces match.</p>"}`;
  $("#filters").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    location.hash = "#/traces?" + new URLSearchParams([...f.entries()].filter(([, v]) => v));
  });
}

async function trace(id) {
  const t = await api(`/ui/api/traces/${encodeURIComponent(id)}`);
  page.innerHTML = `<h2>Trace ${esc(t.id)}</h2><div class="cards">${card("status", `${t.status} ${t.http_status}`, "status")}
    ${card("contract / model", t.contract || t.model, "model")}${card("answered by", t.backend_model || "-", "answered_by")}
    ${card("latency", ms(t.latency_ms), "latency")}${card("cost", usd(t.cost), "cost")}</div>
    <p>${when(t.created_at)} &middot; ${esc(t.endpoint)} ${t.tenant ? "&middot; tenant " + esc(t.tenant) : ""}
    ${t.escalation_reason ? "&middot; escalation: " + esc(t.escalation_reason) : ""}</p>
    <h3>Input</h3><pre>${esc(t.input || JSON.stringify(t.messages, null, 1))}</pre>
    <h3>Attempts</h3>${table(["rung", "model", "status", "reason", "signals", "output", "latency", "cost"], (t.attempts || []).map((a) =>
      `<tr><td>${a.rung}</td><td>${esc(a.model)}</td><td data-attempt="${a.rung}">${esc(a.status)}</td><td>${esc(a.reason)}</td>
       <td><pre>${esc(JSON.stringify(a.signals))}</pre></td><td><pre>${esc(a.output)}</pre></td><td class="num">${ms(a.latency_ms)}</td>
       <td class="num">${usd(a.cost)}</td></tr>`))}
    <h3>Output</h3><pre>${esc(t.output)}</pre>
    <h3>Reference label</h3><p id="label">${t.label ? esc(t.label.reference) + " (" + esc(t.label.source) + ")" : "none"}</p>
    <form id="labelform"><input name="reference" size="40" placeholder="the right answer"> <button>Attach label</button>
    <span id="labelmsg"></span></form>`;
  $("#labelform").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`/ui/api/traces/${encodeURIComponent(id)}/label`, {method: "POST",
        headers: {"content-type": "application/json"}, body: JSON.stringify({reference: new FormData(e.target).get("reference")})});
      route();
    } catch (err) { $("#labelmsg").innerHTML = `<span class="err">${esc(err.message)}</span>`; }
  });
}

async function fleet() {
  const d = await api("/ui/api/fleet");
  page.innerHTML = `<h2>Fleet</h2>${table(["model", "location", "running", "waiting", "queue limit", "concurrency", "breaker"], d.models.map((m) =>
    `<tr><td>${esc(m.id)}</td><td>${esc(m.location)}</td><td class="num">${m.running}</td><td class="num">${m.waiting}</td>
     <td class="num">${m.max_queue}</td><td class="num">${m.concurrency}</td><td data-breaker="${esc(m.id)}">${esc(m.breaker)}</td></tr>`))}
    <h3>Contracts</h3>${table(["contract", "ladder", "served version"], d.contracts.map((c) =>
      `<tr><td><a href="#/contracts/${encodeURIComponent(c.name)}">${esc(c.name)}</a></td><td>${esc(c.ladder.join(" -> "))}</td><td>${esc(c.version)}</td></tr>`))}`;
}

async function route() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  document.body.dataset.ready = "";
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("on", a.dataset.nav === (parts[0] || "overview")));
  try {
    if (parts[0] === "contracts" && parts[1]) await contract(parts[1]);
    else if (parts[0] === "traces" && parts[1]) await trace(parts[1]);
    else if (parts[0] === "traces") await traces(Object.fromEntries(new URLSearchParams(query || "")));
    else if (parts[0] === "fleet") await fleet();
    else await overview();
    document.body.dataset.ready = location.hash || "#/";
  } catch (err) {
    page.innerHTML = `<p class="err" id="error">${esc(err.message)}</p>`;
    document.body.dataset.ready = "error";
  }
}

window.addEventListener("hashchange", route);
route();
