// proxynow dashboard: plain JavaScript, no build step, nothing loaded from the network.
//
// Data comes from the API next to this page ("../api/...", so basePath and any prefix in
// front work) and, live, from the event stream "../api/stream" (docs/dashboard.md):
// `status` events say the configuration changed (the lists are fetched again), `rates`
// events carry per-second rates per router and service (kept here for the charts).
//
// Every text from the configuration (names, rules, errors) is inserted with
// textContent or as an attribute value through the DOM API, never as HTML.
"use strict";

(function () {
  const API = new URL("../api/", window.location.href);
  const KINDS = [
    "http/routers", "http/services", "http/middlewares",
    "tcp/routers", "tcp/services", "tcp/middlewares",
    "udp/routers", "udp/services",
  ];
  const TITLES = {
    "http/routers": "HTTP routers", "http/services": "HTTP services",
    "http/middlewares": "HTTP middlewares", "tcp/routers": "TCP routers",
    "tcp/services": "TCP services", "tcp/middlewares": "TCP middlewares",
    "udp/routers": "UDP routers", "udp/services": "UDP services",
  };
  const HISTORY = 120; // points kept per series: two minutes at one frame per second
  const RANK = { disabled: 0, warning: 1, enabled: 2 };
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    overview: null,
    entrypoints: [],
    lists: {}, // kind -> items
    certificates: [],
    version: null,
    series: { routers: {}, services: {}, entrypoints: {} }, // name -> [{t, rps, err, cerr, lat, p95}]
    times: [],
    filters: {}, // kind -> {search, status}
  };

  // ------------------------------------------------------------ DOM helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, String(value));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function s(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
    return el;
  }

  function replace(el, ...children) {
    el.replaceChildren();
    append(el, children);
  }

  function link(kind, name) {
    return "#/" + kind + "/" + encodeURIComponent(name);
  }

  function badge(status) {
    return h("span", { class: "badge " + status }, status);
  }

  // ------------------------------------------------------------ data

  async function getJSON(path) {
    const response = await fetch(new URL(path, API), { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return [await response.json(), response.headers.get("X-Next-Page")];
  }

  async function getAll(path) {
    let items = [];
    for (let page = 1; ; ) {
      const [chunk, next] = await getJSON(path + "?per_page=500&page=" + page);
      items = items.concat(chunk);
      const following = parseInt(next || "1", 10);
      if (!(following > page)) return items;
      page = following;
    }
  }

  async function loadAll() {
    const [overview] = await getJSON("overview");
    const lists = await Promise.all(KINDS.map((kind) => getAll(kind)));
    const [entrypoints, certificates] = await Promise.all([getAll("entrypoints"), getAll("certificates")]);
    state.overview = overview;
    KINDS.forEach((kind, i) => { state.lists[kind] = lists[i]; });
    state.entrypoints = entrypoints;
    state.certificates = certificates;
    if (!state.version) {
      try { [state.version] = await getJSON("version"); } catch (e) { /* optional */ }
    }
  }

  let reloading = null;
  let reloadAgain = false;
  function reload() {
    // One fetch at a time; a change during it triggers exactly one more.
    if (reloading) { reloadAgain = true; return reloading; }
    reloading = loadAll()
      .then(() => { render(null); })
      .catch((error) => { showFailure(error); })
      .finally(() => {
        reloading = null;
        if (reloadAgain) { reloadAgain = false; reload(); }
      });
    return reloading;
  }

  // ------------------------------------------------------------ live stream

  function connect() {
    const live = document.getElementById("live");
    const source = new EventSource(new URL("stream", API));
    source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
    source.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "live off"; });
    source.addEventListener("status", (event) => {
      const data = JSON.parse(event.data);
      if (data.overview) state.overview = data.overview;
      if (data.resync || (data.changed && data.changed.length) || (data.removed && data.removed.length)) {
        reload();
      } else {
        renderBanner();
      }
    });
    source.addEventListener("rates", (event) => { addRates(JSON.parse(event.data)); updateLive(); });
  }

  function addRates(frame) {
    state.times.push(frame.time);
    if (state.times.length > HISTORY) state.times.shift();
    for (const level of ["routers", "services", "entrypoints"]) {
      const seen = frame[level] || {};
      const table = state.series[level];
      for (const name of Object.keys(seen)) if (!table[name]) table[name] = [];
      for (const [name, points] of Object.entries(table)) {
        const r = seen[name];
        points.push(r ? {
          t: frame.time, rps: r.rps, err: r.errorRate * 100, cerr: r.clientErrorRate * 100,
          lat: r.latencyMs, p95: r.p95Ms,
        } : { t: frame.time, rps: 0, err: 0, cerr: 0, lat: null, p95: null });
        if (points.length > HISTORY) points.shift();
      }
    }
  }

  function last(level, name) {
    const points = state.series[level][name];
    return points && points.length ? points[points.length - 1] : null;
  }

  function fmtRate(value) {
    if (value === null || value === undefined) return "–";
    return (value >= 100 ? value.toFixed(0) : value.toFixed(value >= 10 ? 1 : 2)) + "/s";
  }

  function fmtMs(value) {
    if (value === null || value === undefined) return "–";
    return (value >= 100 ? value.toFixed(0) : value.toFixed(1)) + " ms";
  }

  function fmtPct(value) {
    if (value === null || value === undefined) return "–";
    return value.toFixed(value >= 10 || value === 0 ? 0 : 1) + "%";
  }

  // ------------------------------------------------------------ charts (hand-drawn SVG)

  function path(values, width, height, max, slots) {
    // The newest point at the right edge; `slots` points fill the whole width.
    const n = values.length;
    if (!n) return "";
    const step = width / ((slots || HISTORY) - 1);
    const start = width - step * (n - 1);
    return values.map((v, i) => {
      const x = start + step * i;
      const y = height - (max > 0 ? (Math.max(v || 0, 0) / max) * (height - 2) : 0) - 1;
      return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
    }).join(" ");
  }

  function drawChart(svg, values, fill) {
    const width = 300, height = 64;
    const max = Math.max(...values.map((v) => v || 0), 0) * 1.15;
    svg.replaceChildren();
    svg.appendChild(s("line", { class: "axis", x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5 }));
    const line = path(values, width, height, max);
    if (!line) return;
    if (fill) {
      const first = line.split(" ")[0].slice(1);
      svg.appendChild(s("path", { class: "area", d: line + " L" + width + " " + height + " L" + first + " " + height + " Z" }));
    }
    svg.appendChild(s("path", { class: "line", d: line }));
  }

  function chartCard(title, cls, level, name, key, format, note) {
    const svg = s("svg", { viewBox: "0 0 300 64", preserveAspectRatio: "none", role: "img", "aria-label": title });
    const value = h("div", { class: "value" }, "–");
    const extra = h("div", { class: "muted" });
    const card = h("div", { class: "card chart " + cls, "data-chart": level + "|" + name + "|" + key },
      h("h3", {}, title), value, note ? extra : null, svg);
    card._update = () => {
      const points = state.series[level][name] || [];
      const values = points.map((p) => p[key]);
      const latest = points.length ? points[points.length - 1] : null;
      value.textContent = format(latest ? latest[key] : null);
      if (note) extra.textContent = note(latest);
      drawChart(svg, values, key === "rps");
    };
    card._update();
    return card;
  }

  function charts(level, name) {
    return h("div", { class: "charts" },
      chartCard("Requests per second", "rps", level, name, "rps", fmtRate),
      chartCard("Errors (5xx share)", "err", level, name, "err", fmtPct),
      chartCard("Latency (mean)", "lat", level, name, "lat", fmtMs, (p) =>
        p && p.p95 !== null ? "95% within " + fmtMs(p.p95) : ""));
  }

  function spark(level, name) {
    const svg = s("svg", { class: "spark", viewBox: "0 0 90 22", preserveAspectRatio: "none", "aria-hidden": "true" });
    svg.setAttribute("data-spark", level + "|" + name);
    drawSpark(svg, level, name);
    return svg;
  }

  function drawSpark(svg, level, name) {
    const values = (state.series[level][name] || []).slice(-45).map((p) => p.rps);
    const max = Math.max(...values, 0) * 1.15;
    svg.replaceChildren();
    const line = path(values, 90, 22, max, 45);
    if (line) svg.appendChild(s("path", { class: "line", d: line }));
  }

  function rateCell(level, name) {
    const point = last(level, name);
    return h("td", { class: "num rate", "data-rate": level + "|" + name },
      h("span", { class: "rate-value" }, point ? fmtRate(point.rps) : "–"), spark(level, name));
  }

  function errCell(level, name) {
    const point = last(level, name);
    return h("td", { class: "num wide", "data-err": level + "|" + name }, point ? fmtPct(point.err) : "–");
  }

  function updateLive() {
    // Only the live parts are touched: a search box being typed in keeps its focus.
    for (const card of document.querySelectorAll("[data-chart]")) if (card._update) card._update();
    for (const cell of document.querySelectorAll("[data-rate]")) {
      const [level, name] = splitKey(cell.getAttribute("data-rate"));
      const point = last(level, name);
      cell.querySelector(".rate-value").textContent = point ? fmtRate(point.rps) : "–";
      drawSpark(cell.querySelector("svg"), level, name);
    }
    for (const cell of document.querySelectorAll("[data-err]")) {
      const [level, name] = splitKey(cell.getAttribute("data-err"));
      const point = last(level, name);
      cell.textContent = point ? fmtPct(point.err) : "–";
    }
  }

  function splitKey(key) {
    const at = key.indexOf("|");
    return [key.slice(0, at), key.slice(at + 1)];
  }

  // ------------------------------------------------------------ the banner: errors first

  function problems() {
    const found = [];
    for (const kind of KINDS) {
      for (const item of state.lists[kind] || []) {
        if (item.status === "disabled" || item.status === "warning") found.push([kind, item]);
      }
    }
    for (const cert of state.certificates) {
      if (cert.status !== "enabled") found.push(["certificates", cert]);
    }
    found.sort((a, b) => RANK[a[1].status] - RANK[b[1].status]);
    return found;
  }

  function renderBanner() {
    const banner = document.getElementById("banner");
    const found = problems();
    const errors = found.filter(([, item]) => item.status === "disabled").length;
    const warnings = found.length - errors;
    if (!found.length) { banner.hidden = true; banner.replaceChildren(); return; }
    const title = [];
    if (errors) title.push(errors + (errors === 1 ? " error" : " errors"));
    if (warnings) title.push(warnings + (warnings === 1 ? " warning" : " warnings"));
    const list = h("ul", {});
    for (const [kind, item] of found.slice(0, 6)) {
      const label = kind === "certificates" ? (item.commonName || item.name) : item.name;
      const href = kind === "certificates" ? "#/certificates" : link(kind, item.name);
      const message = (item.error && item.error[0]) || (kind === "certificates" ? "expires soon or expired" : item.status);
      list.appendChild(h("li", { class: "problem" }, h("a", { href }, label), ": ", message));
    }
    if (found.length > 6) list.appendChild(h("li", {}, "and " + (found.length - 6) + " more"));
    banner.className = errors ? "banner" : "banner warn";
    replace(banner, h("span", { id: "banner-count" }, title.join(", ")), list);
    banner.hidden = false;
  }

  // ------------------------------------------------------------ views

  let shown = { path: null, refill: null }; // the list on screen, refilled in place

  function render(event) {
    renderBanner();
    const route = parseRoute();
    if (!event && route.path === shown.path && shown.refill) {
      shown.refill(); // a reload under an open list: keep the search box and its focus
      return;
    }
    shown = { path: route.path, refill: null };
    for (const a of document.querySelectorAll("#nav a")) {
      const target = a.getAttribute("href").slice(1);
      a.classList.toggle("active", target === "/" ? route.path === "/" : route.path.startsWith(target));
    }
    const view = document.getElementById("view");
    if (!state.overview) return;
    let content;
    if (route.parts.length === 0) content = overviewView();
    else if (route.parts[0] === "certificates") content = certificatesView();
    else if (route.parts.length === 2 && KINDS.includes(route.kind)) content = listView(route.kind);
    else if (route.parts.length >= 3 && KINDS.includes(route.kind)) content = detailView(route.kind, route.name);
    else content = h("p", {}, "Nothing here. ", h("a", { href: "#/" }, "Back to the overview"));
    replace(view, content);
    const v = state.version;
    document.getElementById("version").textContent = v ? "proxynow " + v.Version : "";
  }

  function parseRoute() {
    const raw = (window.location.hash || "#/").slice(1);
    const parts = raw.split("/").filter(Boolean);
    const kind = parts.slice(0, 2).join("/");
    let name = null;
    if (parts.length >= 3) {
      try { name = decodeURIComponent(parts.slice(2).join("/")); } catch (e) { name = parts.slice(2).join("/"); }
    }
    return { path: raw || "/", parts, kind, name };
  }

  function overviewView() {
    const o = state.overview;
    const section = h("section", {});
    section.appendChild(h("h1", {}, "Overview"));
    section.appendChild(h("h2", {}, "Entrypoints"));
    const eps = h("div", { class: "grid" });
    for (const ep of state.entrypoints) {
      const card = chartCard(ep.name, "rps", "entrypoints", ep.name, "rps", fmtRate, () => ep.address || "");
      card.setAttribute("data-entrypoint", ep.name);
      eps.appendChild(card);
    }
    if (!state.entrypoints.length) eps.appendChild(h("p", { class: "muted" }, "No entrypoint."));
    section.appendChild(eps);
    for (const protocol of ["http", "tcp", "udp"]) {
      section.appendChild(h("h2", {}, protocol.toUpperCase()));
      const grid = h("div", { class: "grid" });
      for (const [sectionName, counts] of Object.entries(o[protocol] || {})) {
        const kind = protocol + "/" + sectionName;
        grid.appendChild(countCard(TITLES[kind] || kind, counts, "#/" + kind));
      }
      section.appendChild(grid);
    }
    section.appendChild(h("h2", {}, "Certificates, providers, features"));
    const grid = h("div", { class: "grid" });
    grid.appendChild(countCard("Certificates", o.certificates || { total: 0, warnings: 0, errors: 0 }, "#/certificates"));
    grid.appendChild(h("div", { class: "card" }, h("h3", {}, "Providers"),
      (o.providers || []).length ? (o.providers || []).map((p) => h("span", { class: "chip" }, p)) : h("span", { class: "muted" }, "none")));
    const features = o.features || {};
    grid.appendChild(h("div", { class: "card" }, h("h3", {}, "Features"),
      h("div", {}, "Metrics: ", features.metrics || "off"),
      h("div", {}, "Access log: ", features.accessLog ? "on" : "off"),
      h("div", {}, "Tracing: ", features.tracing || "off")));
    section.appendChild(grid);
    return section;
  }

  function countCard(title, counts, href) {
    const bad = counts.errors > 0;
    return h("a", { href, class: "card" + (bad ? " has-errors" : "") },
      h("h3", {}, title),
      h("div", { class: "big" }, counts.total),
      h("div", { class: "counts" },
        h("span", { class: bad ? "bad" : "muted" }, counts.errors + " errors"),
        h("span", { class: counts.warnings > 0 ? "warn" : "muted" }, counts.warnings + " warnings")));
  }

  function sortErrorsFirst(items) {
    return items.slice().sort((a, b) =>
      (RANK[a.status] ?? 3) - (RANK[b.status] ?? 3) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  function listView(kind) {
    const filter = state.filters[kind] || (state.filters[kind] = { search: "", status: "" });
    const body = h("tbody", {});
    const fill = () => replace(body, rows(kind, filter));
    const search = h("input", {
      type: "search", placeholder: "Search by name" + (kind.endsWith("routers") ? " or rule" : ""),
      value: filter.search, "aria-label": "Search", id: "search",
      oninput: (e) => { filter.search = e.target.value; fill(); },
    });
    const select = h("select", {
      "aria-label": "Status", id: "status-filter",
      onchange: (e) => { filter.status = e.target.value; fill(); },
    }, ["", "disabled", "warning", "enabled"].map((value) =>
      h("option", { value, selected: filter.status === value ? "selected" : null }, value ? value : "any status")));
    const head = h("tr", {}, headers(kind).map(([label, wide]) => h("th", { class: wide ? "wide" : null }, label)));
    fill();
    shown.refill = fill;
    return h("section", {},
      h("h1", {}, TITLES[kind]),
      h("div", { class: "tools" }, search, select),
      h("div", { class: "table-wrap" }, h("table", { id: "list" }, h("thead", {}, head), body)));
  }

  function headers(kind) {
    const section = kind.split("/")[1];
    if (section === "routers") {
      const live = kind.startsWith("http") ? [["Req/s"], ["5xx", true]] : [];
      return [["Status"], ["Name"], ["Rule", true], ["Entrypoints", true], ["Service"], ...live];
    }
    if (section === "services") {
      const live = kind.startsWith("http") ? [["Req/s"], ["5xx", true]] : [];
      return [["Status"], ["Name"], ["Type", true], ["Servers"], ...live];
    }
    return [["Status"], ["Name"], ["Type"], ["Used by", true]];
  }

  function matches(kind, item, filter) {
    if (filter.status && item.status !== filter.status) return false;
    const needle = filter.search.trim().toLowerCase();
    if (!needle) return true;
    return item.name.toLowerCase().includes(needle) || (item.rule || "").toLowerCase().includes(needle);
  }

  function rows(kind, filter) {
    const [protocol, section] = kind.split("/");
    const items = sortErrorsFirst((state.lists[kind] || []).filter((item) => matches(kind, item, filter)));
    if (!items.length) return [h("tr", {}, h("td", { colspan: 8, class: "muted" }, "Nothing matches."))];
    return items.map((item) => {
      const name = h("td", { class: "name" }, h("a", { href: link(kind, item.name) }, item.name),
        (item.error || []).map((message) =>
          h("div", { class: item.status === "disabled" ? "err-text" : "warn-text" }, message)));
      const cells = [h("td", {}, badge(item.status)), name];
      if (section === "routers") {
        cells.push(h("td", { class: "rule mono wide" }, item.rule || ""));
        cells.push(h("td", { class: "wide" }, (item.using || []).map((ep) => h("span", { class: "chip" }, ep))));
        cells.push(h("td", {}, item.service ? h("a", { href: link(protocol + "/services", item.service) }, item.service) : ""));
        if (protocol === "http") cells.push(rateCell("routers", item.name), errCell("routers", item.name));
      } else if (section === "services") {
        cells.push(h("td", { class: "wide" }, item.type || ""));
        cells.push(h("td", {}, serverSummary(item)));
        if (protocol === "http") cells.push(rateCell("services", item.name), errCell("services", item.name));
      } else {
        cells.push(h("td", {}, item.type || ""));
        cells.push(h("td", { class: "wide" }, (item.usedBy || []).map((r) => h("span", { class: "chip" }, r))));
      }
      return h("tr", { class: "row status-" + item.status, "data-name": item.name }, cells);
    });
  }

  function serverSummary(item) {
    const statuses = Object.values(item.serverStatus || {});
    const servers = ((item.loadBalancer || {}).servers || []).length;
    if (!statuses.length) return servers ? String(servers) : "–";
    const down = statuses.filter((x) => x === "DOWN").length;
    return h("span", {}, statuses.length - down + "/" + statuses.length + " up",
      down ? h("span", { class: "badge DOWN" }, down + " down") : null);
  }

  function detailView(kind, name) {
    const item = (state.lists[kind] || []).find((x) => x.name === name);
    const [protocol, section] = kind.split("/");
    if (!item) {
      return h("section", {}, h("h1", {}, name), h("p", { class: "muted" }, "Not found (removed?). "),
        h("a", { href: "#/" + kind }, "Back to " + TITLES[kind]));
    }
    const parts = [h("h1", {}, item.name, " ", badge(item.status))];
    if (item.error && item.error.length) {
      parts.push(h("div", { class: "errors-box", id: "item-errors" },
        h("strong", {}, item.status === "disabled" ? "Errors" : "Warnings"),
        h("ul", {}, item.error.map((message) => h("li", {}, message)))));
    }
    const props = h("dl", { class: "props" });
    const prop = (label, ...value) => { props.appendChild(h("dt", {}, label)); props.appendChild(h("dd", {}, ...value)); };
    prop("Provider", item.provider || "");
    if (section === "routers") {
      prop("Rule", h("code", {}, item.rule || ""));
      prop("Entrypoints", (item.using || []).map((ep) => h("span", { class: "chip" }, ep)));
      if (item.service) prop("Service", h("a", { href: link(protocol + "/services", item.service) }, item.service));
      if (item.middlewares && item.middlewares.length) {
        prop("Middlewares", item.middlewares.map((m) =>
          h("a", { class: "chip", href: link(protocol + "/middlewares", m) }, m)));
      }
      if (item.priority !== undefined) prop("Priority", item.priorityStr || String(item.priority));
      prop("TLS", item.tls ? h("pre", {}, JSON.stringify(item.tls, null, 2)) : "no");
    } else if (section === "services") {
      prop("Type", item.type || "");
      if (item.usedBy) prop("Used by", item.usedBy.map((r) => h("a", { class: "chip", href: link(protocol + "/routers", r) }, r)));
    } else {
      prop("Type", item.type || "");
      if (item.usedBy) prop("Used by", item.usedBy.map((r) => h("a", { class: "chip", href: link(protocol + "/routers", r) }, r)));
    }
    parts.push(h("div", { class: "card" }, props));
    if (section === "services") parts.push(serversTable(item));
    if (protocol === "http" && section !== "middlewares") {
      parts.push(h("h2", {}, "Live"), charts(section, item.name));
    }
    const config = Object.assign({}, item);
    for (const key of ["name", "provider", "status", "error", "using", "usedBy", "serverStatus", "priorityStr"]) delete config[key];
    parts.push(h("h2", {}, "Configuration"), h("div", { class: "card" }, h("pre", {}, JSON.stringify(config, null, 2))));
    return h("section", {}, parts);
  }

  function serversTable(item) {
    const status = item.serverStatus || {};
    const servers = ((item.loadBalancer || {}).servers || []).map((srv) => srv.url || srv.address || "");
    const names = servers.length ? servers : Object.keys(status);
    if (!names.length) return null;
    const rowsOut = names.map((url) => h("tr", {},
      h("td", { class: "mono name" }, url),
      h("td", {}, status[url] ? badge(status[url]) : h("span", { class: "muted" }, "–"))));
    return h("div", {}, h("h2", {}, "Servers"),
      h("div", { class: "table-wrap" }, h("table", { id: "servers" },
        h("thead", {}, h("tr", {}, h("th", {}, "Server"), h("th", {}, "Status"))), h("tbody", {}, rowsOut))));
  }

  function daysLeft(notAfter) {
    return Math.floor((Date.parse(notAfter) - Date.now()) / 86400000);
  }

  function certificatesView() {
    const certs = state.certificates.slice().sort((a, b) =>
      (RANK[a.status] ?? 3) - (RANK[b.status] ?? 3) || Date.parse(a.notAfter) - Date.parse(b.notAfter));
    const body = h("tbody", {});
    for (const cert of certs) {
      const days = daysLeft(cert.notAfter);
      const cls = days < 0 ? "days-bad" : days < 30 ? "days-warn" : "";
      body.appendChild(h("tr", { class: "row status-" + cert.status, "data-name": cert.name },
        h("td", {}, badge(cert.status)),
        h("td", { class: "name" }, cert.commonName || "(no common name)",
          h("div", { class: "muted" }, (cert.sans || []).join(", "))),
        h("td", { class: "wide" }, cert.issuerOrg || cert.issuerCN || ""),
        h("td", { class: "wide mono" }, cert.notAfter.slice(0, 10)),
        h("td", { class: "num " + cls }, days < 0 ? "expired" : days + " days")));
    }
    if (!certs.length) body.appendChild(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No certificate.")));
    return h("section", {}, h("h1", {}, "Certificates"),
      h("div", { class: "table-wrap" }, h("table", { id: "certificates" },
        h("thead", {}, h("tr", {}, h("th", {}, "Status"), h("th", {}, "Domains"), h("th", { class: "wide" }, "Issuer"),
          h("th", { class: "wide" }, "Expires"), h("th", {}, "Left"))), body)));
  }

  function showFailure(error) {
    const live = document.getElementById("live");
    live.textContent = "API unreachable";
    live.className = "live off";
    if (!state.overview) replace(document.getElementById("view"), h("p", { class: "err-text" }, String(error)));
  }

  // ------------------------------------------------------------ theme

  function setupTheme() {
    const button = document.getElementById("theme");
    const root = document.documentElement;
    const saved = window.localStorage.getItem("proxynow-theme");
    if (saved === "dark" || saved === "light") root.setAttribute("data-theme", saved);
    const current = () => root.getAttribute("data-theme") ||
      (window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    // The button names the theme it switches to.
    const label = () => { button.textContent = current() === "dark" ? "☀ light" : "☾ dark"; };
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", label);
    button.addEventListener("click", () => {
      const next = current() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      window.localStorage.setItem("proxynow-theme", next);
      label();
    });
    label();
  }

  window.addEventListener("hashchange", (event) => render(event));
  setupTheme();
  reload().then(connect);
})();
