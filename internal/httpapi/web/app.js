// stratumd's pool page: plain JavaScript, no dependencies. Everything comes
// from this server's JSON API; every value is written with textContent.
"use strict";

(function () {
  const REFRESH_MS = 30000;
  const CHART_LINE = "#f7931a";
  const CHART_FILL = "rgba(247, 147, 26, 0.15)";

  const $ = (id) => document.getElementById(id);

  function formatHashrate(h) {
    if (!(h > 0)) return "0 H/s";
    const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"];
    let i = 0;
    while (h >= 1000 && i < units.length - 1) { h /= 1000; i++; }
    return (h >= 100 ? h.toFixed(0) : h >= 10 ? h.toFixed(1) : h.toFixed(2)) + " " + units[i];
  }

  function formatNumber(n) {
    if (n === null || n === undefined) return "–";
    if (Math.abs(n) >= 1e6) {
      const units = ["", "k", "M", "G", "T", "P", "E"];
      let i = 0;
      while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
      return n.toFixed(2) + " " + units[i];
    }
    return n.toLocaleString(undefined, { maximumFractionDigits: 3 });
  }

  // formatDiff writes a share difficulty as miners show theirs: 4.29G,
  // 512k, 1.00, 0.000153.
  function formatDiff(n) {
    if (n === null || n === undefined) return "–";
    if (n >= 1000) {
      const units = ["", "k", "M", "G", "T", "P", "E", "Z"];
      let i = 0;
      while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
      return (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) + units[i];
    }
    if (n >= 1) return n.toFixed(2);
    return n > 0 ? n.toPrecision(3) : "0";
  }

  function formatBTC(sats) {
    if (sats === null || sats === undefined) return "–";
    const neg = sats < 0;
    const s = String(Math.abs(sats)).padStart(9, "0");
    return (neg ? "-" : "") + s.slice(0, -8) + "." + s.slice(-8);
  }

  function formatTime(t) {
    if (!t) return "–";
    const d = new Date(t);
    if (isNaN(d)) return "–";
    return d.toLocaleString();
  }

  function ago(t) {
    if (!t) return "–";
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  // shortHash keeps a hash's ends: block hashes all start with zeros.
  function shortHash(h) {
    return h.length > 24 ? h.slice(0, 8) + "…" + h.slice(-12) : h;
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: { "Accept": "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) {
      const msg = body && body.error ? body.error : r.status + " " + r.statusText;
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    return body;
  }

  // ---- pool --------------------------------------------------------------

  function showPool(p) {
    $("pool-hashrate").textContent = formatHashrate(p.hashrate);
    $("pool-workers").textContent = String(p.workers);
    $("pool-miners").textContent = String(p.miners);
    $("pool-shares").textContent = p.shares_per_second.toFixed(2);
    $("pool-blocks").textContent = p.blocks_found === null ? "–" : String(p.blocks_found);
    $("pool-last-block").textContent = p.last_block ? p.last_block.height + " (" + ago(p.last_block.found_at) + ")" : "–";
    if (p.template_age_seconds !== null) {
      $("net-height").textContent = String(p.network.height);
      $("net-diff").textContent = formatNumber(p.network.difficulty);
    }
    $("status").textContent = "updated " + new Date(p.time).toLocaleTimeString() +
      (p.database_ok ? "" : " · database unavailable");
  }

  function showBlocks(list) {
    const body = $("blocks-body");
    body.replaceChildren();
    for (const b of list) {
      const tr = document.createElement("tr");
      cell(tr, String(b.height));
      cell(tr, formatTime(b.found_at));
      cell(tr, b.status, "status-" + b.status);
      cell(tr, formatBTC(b.reward));
      cell(tr, b.worker ? b.user + "." + b.worker : b.user, "hash");
      cell(tr, shortHash(b.hash), "hash").title = b.hash;
      body.appendChild(tr);
    }
    $("blocks-empty").hidden = list.length > 0;
  }

  // ---- chart -------------------------------------------------------------

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (m * p >= v) return m * p;
    }
    return 10 * p;
  }

  function drawChart(points) {
    const canvas = $("chart");
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || canvas.width;
    const cssH = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillStyle = "#66707c";
    canvas.dataset.points = String(points.length);
    if (points.length < 2) {
      ctx.textAlign = "center";
      ctx.fillText("collecting hashrate samples…", cssW / 2, cssH / 2);
      return;
    }
    const left = 78, right = 12, top = 12, bottom = 26;
    const w = cssW - left - right, h = cssH - top - bottom;
    const t0 = points[0].t, t1 = points[points.length - 1].t;
    const ymax = niceMax(Math.max(...points.map((p) => p.hashrate)) * 1.05);
    const x = (t) => left + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * w;
    const y = (v) => top + h - (v / ymax) * h;

    // Grid and labels.
    ctx.strokeStyle = "#dde2e8";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(left + w, yy);
      ctx.stroke();
      ctx.fillText(formatHashrate(v), left - 6, yy);
    }
    ctx.textBaseline = "top";
    for (const [t, align] of [[t0, "left"], [(t0 + t1) / 2, "center"], [t1, "right"]]) {
      ctx.textAlign = align;
      ctx.fillText(new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }), x(t), top + h + 6);
    }

    // Area and line.
    ctx.beginPath();
    ctx.moveTo(x(points[0].t), y(0));
    for (const p of points) ctx.lineTo(x(p.t), y(p.hashrate));
    ctx.lineTo(x(t1), y(0));
    ctx.closePath();
    ctx.fillStyle = CHART_FILL;
    ctx.fill();
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.hashrate)) : ctx.moveTo(x(p.t), y(p.hashrate))));
    ctx.strokeStyle = CHART_LINE;
    ctx.lineWidth = 2.5;
    ctx.lineJoin = "round";
    ctx.stroke();
  }

  let lastPoints = [];

  async function refresh() {
    try {
      const [pool, hist, blocks] = await Promise.all([
        getJSON("api/pool"), getJSON("api/pool/history"), getJSON("api/blocks?limit=10"),
      ]);
      showPool(pool);
      lastPoints = hist.points;
      drawChart(lastPoints);
      showBlocks(blocks.blocks);
    } catch (e) {
      $("status").textContent = "could not load pool data: " + e.message;
    }
  }

  // ---- user lookup -------------------------------------------------------

  function userFromHash() {
    const m = /^#user=(.+)$/.exec(location.hash);
    if (!m) return "";
    try { return decodeURIComponent(m[1]); } catch (e) { return ""; }
  }

  async function lookup(name) {
    const errBox = $("user-error");
    errBox.hidden = true;
    if (!name) { $("user").hidden = true; return; }
    $("lookup-name").value = name;
    const enc = encodeURIComponent(name);
    try {
      const [u, pays] = await Promise.all([
        getJSON("api/users/" + enc), getJSON("api/payments?limit=20&user=" + enc),
      ]);
      showUser(u, pays.payments);
    } catch (e) {
      $("user").hidden = true;
      errBox.textContent = e.status === 404 ? "No user named " + name + "." : "Lookup failed: " + e.message;
      errBox.hidden = false;
    }
  }

  function showUser(u, payments) {
    $("user-name").textContent = u.user;
    $("user-hashrate").textContent = formatHashrate(u.hashrate);
    $("user-last-share").textContent = u.last_share ? ago(u.last_share) : "never";
    const b = u.balance;
    $("user-balance").textContent = b ? formatBTC(b.balance) : formatBTC(0);
    $("user-pending").textContent = b ? formatBTC(b.pending) : formatBTC(0);
    $("user-paid").textContent = b ? formatBTC(b.paid) : formatBTC(0);

    const wb = $("workers-body");
    wb.replaceChildren();
    const r = u.round || {};
    $("user-round").textContent = r.after_hash
      ? "This round: since the pool's block " + r.after_height + " (" + formatTime(r.start) + ")."
      : "This round: since the pool started (no block found yet).";
    for (const w of u.workers) {
      const tr = document.createElement("tr");
      tr.dataset.worker = w.name;
      cell(tr, w.name || "(default)");
      cell(tr, formatHashrate(w.hashrate_10m), "w-hashrate-10m").dataset.value = String(w.hashrate_10m);
      cell(tr, formatHashrate(w.hashrate_1h), "w-hashrate-1h").dataset.value = String(w.hashrate_1h);
      cell(tr, String(w.accepted), "w-accepted").dataset.value = String(w.accepted);
      const reasons = Object.entries(w.rejected_by_reason || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      const rej = cell(tr, String(w.rejected) + (reasons.length ? " (" + reasons.map(([k, n]) => k + " " + n).join(", ") + ")" : ""), "w-rejected");
      rej.dataset.value = String(w.rejected);
      cell(tr, w.best_share_difficulty > 0 ? formatDiff(w.best_share_difficulty) : "–", "w-best").dataset.value = String(w.best_share_difficulty);
      const rb = w.round_best_share_difficulty;
      cell(tr, rb === null || rb === undefined ? "–" : formatDiff(rb), "w-round-best").dataset.value = String(rb);
      cell(tr, w.last_share ? ago(w.last_share) : "–");
      wb.appendChild(tr);
    }
    const pb = $("payments-body");
    pb.replaceChildren();
    for (const p of payments) {
      for (const o of p.outputs) {
        const tr = document.createElement("tr");
        cell(tr, formatTime(p.created_at));
        cell(tr, p.state, "status-" + p.state);
        cell(tr, formatBTC(o.amount));
        cell(tr, o.address, "hash").title = o.address;
        cell(tr, p.txid ? shortHash(p.txid) : "–", "hash").title = p.txid || "";
        pb.appendChild(tr);
      }
    }
    $("user").hidden = false;
  }

  $("lookup").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("lookup-name").value.trim();
    if (location.hash === "#user=" + encodeURIComponent(name)) {
      lookup(name);
    } else {
      location.hash = "user=" + encodeURIComponent(name);
    }
  });
  window.addEventListener("hashchange", () => lookup(userFromHash()));
  window.addEventListener("resize", () => drawChart(lastPoints));

  refresh();
  lookup(userFromHash());
  setInterval(refresh, REFRESH_MS);
})();
