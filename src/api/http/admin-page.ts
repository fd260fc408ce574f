/**
 * The admin page: one self-contained HTML document (no build step, no
 * external assets) embedded as a string so it ships inside dist/. It polls
 * the JSON API (/v1/cluster, /v1/ring) and renders with textContent only, so
 * node ids and addresses can never inject markup. When the API answers 401 it
 * asks for the bearer token and keeps it in sessionStorage.
 */
export const adminRefreshMs = 2000;

export const adminPageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringkv admin</title>
<style>
  :root { --bg:#0f1419; --panel:#182029; --line:#2a3542; --fg:#e6edf3; --dim:#8b98a5; --ok:#3fb950; --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--fg); }
  header { display:flex; align-items:baseline; gap:16px; padding:14px 24px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
  header .dim { color:var(--dim); }
  main { padding:20px 24px; display:grid; gap:20px; max-width:1200px; }
  .cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(160px,1fr)); gap:12px; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  .card .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.6px; }
  .card .value { font-size:22px; font-weight:600; margin-top:4px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
  .card .value.small { font-size:15px; line-height:29px; font-family:ui-monospace, monospace; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
  section h2 { font-size:14px; margin:0 0 10px; color:var(--dim); text-transform:uppercase; letter-spacing:.6px; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  td.num { text-align:right; font-variant-numeric:tabular-nums; }
  .pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
  .up { background:rgba(63,185,80,.15); color:var(--ok); }
  .suspect { background:rgba(210,153,34,.15); color:var(--warn); }
  .down { background:rgba(248,81,73,.15); color:var(--bad); }
  #ringbar { display:flex; height:28px; border-radius:6px; overflow:hidden; border:1px solid var(--line); }
  #ringbar div { height:100%; }
  .legend { display:flex; flex-wrap:wrap; gap:12px; margin-top:8px; color:var(--dim); font-size:12px; }
  .legend span::before { content:""; display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; background:var(--c); }
  form { display:flex; gap:8px; }
  input { flex:1; background:var(--bg); color:var(--fg); border:1px solid var(--line); border-radius:6px; padding:6px 10px; font:inherit; }
  button { background:var(--accent); color:#04111f; border:0; border-radius:6px; padding:6px 14px; font-weight:600; cursor:pointer; }
  #lookup-out { margin-top:8px; color:var(--dim); font-family:ui-monospace, monospace; white-space:pre-wrap; }
  #error { color:var(--bad); }
</style>
</head>
<body>
<header><h1>ringkv</h1><span class="dim" id="self"></span><span class="dim" id="updated"></span><span id="error"></span></header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Nodes up</div><div class="value" id="c-nodes">–</div></div>
    <div class="card"><div class="label">Keys (approx.)</div><div class="value" id="c-keys">–</div></div>
    <div class="card"><div class="label">Partitions</div><div class="value" id="c-parts">–</div></div>
    <div class="card"><div class="label">Replicas (N)</div><div class="value" id="c-n">–</div></div>
    <div class="card"><div class="label">Ring version</div><div class="value small" id="c-version">–</div></div>
  </div>
  <section>
    <h2>Nodes</h2>
    <table><thead><tr><th>Node</th><th>Liveness</th><th>Status</th><th>DC / rack</th><th>RESP</th><th>HTTP</th><th>Cluster</th><th class="num">Partitions</th><th class="num">Stored keys</th></tr></thead>
    <tbody id="nodes"></tbody></table>
  </section>
  <section>
    <h2>Ring (primary owner of each partition range)</h2>
    <div id="ringbar"></div>
    <div class="legend" id="legend"></div>
  </section>
  <section>
    <h2>Where does a key live?</h2>
    <form id="lookup"><input id="lookup-key" placeholder="key, e.g. user:42" autocomplete="off"><button>Look up</button></form>
    <div id="lookup-out"></div>
  </section>
</main>
<script>
"use strict";
const REFRESH_MS = ${adminRefreshMs};
const MAX_SEGMENTS = 1024;
let replicationFactor = 1;
let shownRingVersion = null;
const palette = ["#58a6ff","#3fb950","#d29922","#bc8cff","#f778ba","#39c5cf","#ff7b72","#a5d6ff","#7ee787","#e3b341"];
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function token() { return sessionStorage.getItem("ringkv-token"); }
async function api(path) {
  const headers = {};
  if (token()) headers.authorization = "Bearer " + token();
  const res = await fetch(path, { headers });
  if (res.status === 401) {
    const t = prompt("This ringkv node requires a bearer token:");
    if (t) { sessionStorage.setItem("ringkv-token", t); return api(path); }
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.code + ": " + body.error.message : res.statusText);
  return body;
}
const colors = new Map();
function colorOf(id) { if (!colors.has(id)) colors.set(id, palette[colors.size % palette.length]); return colors.get(id); }
function renderNodes(cluster) {
  const tbody = document.getElementById("nodes");
  tbody.replaceChildren();
  for (const n of cluster.nodes) {
    const tr = document.createElement("tr");
    const name = el("td", n.id + (n.id === cluster.self ? " (this node)" : ""));
    name.style.borderLeft = "4px solid " + colorOf(n.id);
    tr.append(name);
    const live = el("td"); live.append(el("span", n.liveness, "pill " + n.liveness)); tr.append(live);
    tr.append(el("td", n.status), el("td", n.dc + " / " + n.rack), el("td", n.respAddress || "–"), el("td", n.httpAddress || "–"), el("td", n.address || "–"));
    tr.append(el("td", n.partitions, "num"), el("td", n.keys === null || n.keys === undefined ? "–" : n.keys.toLocaleString(), "num"));
    tbody.append(tr);
  }
  const up = cluster.nodes.filter((n) => n.liveness === "up").length;
  document.getElementById("c-nodes").textContent = up + " / " + cluster.nodes.length;
  // Each key is stored on N nodes: the distinct count is about the sum of stored copies over N.
  const copies = cluster.nodes.reduce((s, n) => s + (typeof n.keys === "number" ? n.keys : 0), 0);
  const n = Math.max(1, Math.min(replicationFactor, cluster.nodes.length));
  document.getElementById("c-keys").textContent = Math.round(copies / n).toLocaleString();
  document.getElementById("self").textContent = "node " + cluster.self;
}
/** Ranges to at most MAX_SEGMENTS bar segments, each coloured by the owner of most of its partitions. */
function segmentsOf(ring) {
  const per = Math.max(1, Math.ceil(ring.partitionCount / MAX_SEGMENTS));
  const segments = [];
  let counts = new Map(), filled = 0, first = 0;
  const flush = (end) => {
    let best = "unowned", most = -1;
    for (const [id, c] of counts) if (c > most) { best = id; most = c; }
    segments.push({ owner: best, start: first, end, width: filled });
    counts = new Map(); filled = 0; first = end + 1;
  };
  for (const r of ring.ranges) {
    const owner = r.replicas[0] || "unowned";
    let p = r.start;
    while (p <= r.end) {
      const take = Math.min(r.end - p + 1, per - filled);
      counts.set(owner, (counts.get(owner) || 0) + take);
      filled += take; p += take;
      if (filled === per) flush(p - 1);
    }
  }
  if (filled > 0) flush(first + filled - 1);
  return segments;
}
function renderRing(ring) {
  replicationFactor = ring.replicationFactor;
  document.getElementById("c-parts").textContent = ring.partitionCount.toLocaleString();
  document.getElementById("c-n").textContent = ring.replicationFactor;
  document.getElementById("c-version").textContent = ring.version;
  document.getElementById("c-version").title = ring.version;
  const bar = document.getElementById("ringbar");
  bar.replaceChildren();
  for (const seg of segmentsOf(ring)) {
    const d = document.createElement("div");
    d.style.flex = String(seg.width);
    d.style.background = colorOf(seg.owner);
    d.title = "partitions " + seg.start + "–" + seg.end + ": mostly " + seg.owner;
    bar.append(d);
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  const owned = ring.partitionsByNode || {};
  for (const id of Object.keys(owned).sort()) {
    const s = el("span", id + " " + (100 * owned[id] / ring.partitionCount).toFixed(1) + "%");
    s.style.setProperty("--c", colorOf(id));
    legend.append(s);
  }
  if (ring.ranges.length === 0) legend.append(el("span", "no ring yet: the nodes are still agreeing on one"));
}
async function refresh() {
  try {
    // The full ring (up to ~1 MB) only when its version changed; the summary otherwise.
    const [cluster, summary] = await Promise.all([api("/v1/cluster"), api("/v1/ring?summary=true")]);
    if (summary.version !== shownRingVersion || summary.rangeCount === 0) {
      renderRing(await api("/v1/ring"));
      shownRingVersion = summary.version;
    }
    renderNodes(cluster);
    document.getElementById("error").textContent = "";
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("error").textContent = String(e.message || e);
  }
}
document.getElementById("lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const key = document.getElementById("lookup-key").value;
  const out = document.getElementById("lookup-out");
  if (!key) return;
  try {
    const r = await api("/v1/replicas/" + encodeURIComponent(key));
    out.textContent = "partition " + r.partition + "\\nreplicas: " + r.replicas.join(", ") + "\\nsloppy now: " + r.sloppy.join(", ");
  } catch (e) { out.textContent = String(e.message || e); }
});
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
`;
