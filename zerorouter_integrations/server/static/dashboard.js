"use strict";
(function () {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  const headers = key ? { Authorization: "Bearer " + key } : {};
  const $ = (id) => document.getElementById(id);
  const usd = (v) => (v === null || v === undefined ? "–" : v.toFixed(6));
  const pct = (v) => (v === null || v === undefined ? "–" : (100 * v).toFixed(1) + " %");
  const sec = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));
  function set(id, text, value) {
    const el = $(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = String(value);
  }
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  function fill(tableId, rows, render) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      render(tr, r);
      body.appendChild(tr);
    }
  }
  function chart(series) {
    const svg = $("saving-chart");
    const W = 800, H = 220, P = 30, NS = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    if (series.length < 1) return;
    const t0 = series[0].t, t1 = Math.max(series[series.length - 1].t, t0 + 1);
    const vals = series.flatMap((p) => [p.saving_usd, p.cost_usd]);
    const lo = Math.min(0, ...vals), hi = Math.max(1e-12, ...vals);
    const x = (t) => P + ((W - 2 * P) * (t - t0)) / (t1 - t0);
    const y = (v) => H - P - ((H - 2 * P) * (v - lo)) / (hi - lo);
    const line = (field, color, label, dy) => {
      const path = document.createElementNS(NS, "polyline");
      path.setAttribute("points", series.map((p) => x(p.t).toFixed(1) + "," + y(p[field]).toFixed(1)).join(" "));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", color);
      path.setAttribute("stroke-width", "2");
      svg.appendChild(path);
      const text = document.createElementNS(NS, "text");
      text.setAttribute("x", P + 4);
      text.setAttribute("y", P + dy);
      text.setAttribute("fill", color);
      text.setAttribute("font-size", "12");
      text.textContent = label + " " + usd(series[series.length - 1][field]);
      svg.appendChild(text);
    };
    const axis = document.createElementNS(NS, "line");
    axis.setAttribute("x1", P); axis.setAttribute("x2", W - P);
    axis.setAttribute("y1", y(0)); axis.setAttribute("y2", y(0));
    axis.setAttribute("stroke", "#bbc");
    svg.appendChild(axis);
    line("saving_usd", "#1a9850", "cumulative saving (USD)", 0);
    line("cost_usd", "#d73027", "cumulative cost (USD)", 16);
  }
  function render(d) {
    const t = d.totals;
    set("total-requests", String(t.requests), t.requests);
    set("total-routed", String(t.routed), t.routed);
    set("total-cost", usd(t.cost_usd), t.cost_usd);
    set("total-saving", usd(t.saving_usd), t.saving_usd);
    set("saving-pct", t.reference_cost_usd > 0 ? pct(t.saving_usd / t.reference_cost_usd) + " of the reference cost" : "");
    set("fallback-rate", pct(d.fallback_rate), d.fallback_rate);
    set("total-fallbacks", t.fallbacks + " fallbacks", t.fallbacks);
    set("error-rate", pct(d.error_rate), d.error_rate);
    set("total-errors", t.failed + " failed requests", t.failed);
    set("feedback-mean", d.feedback_mean === null ? "–" : d.feedback_mean.toFixed(2), d.feedback_mean);
    set("total-feedback", t.feedback + " scores", t.feedback);
    const ref = d.decisions.length ? d.decisions[0].explanation.match(/vs (\S+)/) : null;
    if (ref) $("reference").textContent = ref[1];
    chart(d.saving_series);
    fill("models", d.models, (tr, m) => {
      const td = cell(tr, "");
      td.textContent = m.model;
      const share = cell(tr, "");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = Math.round(120 * m.share) + "px";
      share.appendChild(bar);
      share.appendChild(document.createTextNode(pct(m.share)));
      cell(tr, String(m.calls), "num");
      cell(tr, sec(m.p50_s), "num");
      cell(tr, sec(m.p95_s), "num");
      cell(tr, usd(m.cost_usd), "num");
      cell(tr, m.feedback_mean === null ? "–" : m.feedback_mean.toFixed(2) + " (" + m.feedback_n + ")", "num");
    });
    fill("errors", Object.entries(d.errors), (tr, [k, v]) => { cell(tr, k); cell(tr, String(v), "num"); });
    fill("decisions", d.decisions, (tr, r) => {
      cell(tr, new Date(r.time * 1000).toLocaleTimeString());
      cell(tr, r.virtual_model);
      cell(tr, r.model);
      cell(tr, usd(r.cost_usd), "num");
      cell(tr, usd(r.saving_usd), "num");
      cell(tr, sec(r.latency_s), "num");
      cell(tr, r.explanation + (r.fallbacks.length ? "; after " + r.fallbacks.join(", ") + " failed" : ""));
    });
    $("status").textContent = "updated " + new Date().toLocaleTimeString() + " · up " + Math.round(d.uptime_s) + " s";
    document.body.dataset.loaded = "1";
  }
  async function tick() {
    try {
      const r = await fetch("dashboard/data".replace(/^/, location.pathname.replace(/dashboard\/?$/, "")), { headers });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
    } catch (e) {
      $("status").textContent = "cannot load data: " + e.message;
    }
  }
  tick();
  setInterval(tick, 2000);
})();
