/*
 * The compare page: a diff flame graph and a table of a base range (or another group)
 * against a compared range, coloured by the change in each frame's share. Ranges come from
 * the form, from presets, or from two drags on the chart. A side without profiles is said
 * so, and its comparison is not drawn (it would paint every frame as new). The form's
 * values, the zoom and the search live in the URL, so a comparison can be linked from a ticket.
 */
(function () {
  "use strict";

  var page = document.getElementById("compare-page");
  if (!page) return;
  var G = window.Greenflame;
  var api = page.dataset.api;
  var HOUR_S = 3600;
  var DAY_S = 86400;
  var FIELDS = ["base_group", "base_from", "base_to", "from", "to"];
  var lastS = page.dataset.last ? Math.ceil(Number(page.dataset.last) / 1e9) : Math.floor(Date.now() / 1000);
  var DEFAULTS = { base_group: "", base_from: "", base_to: "", from: "", to: "", type: "cpu", search: "", zoom: "" };
  var RANGE_KEYS = ["base_group", "base_from", "base_to", "from", "to"];
  var COLORS = { base: "hsla(214, 80%, 50%, 0.30)", target: "hsla(2, 80%, 50%, 0.30)" };
  var state = readState();
  var $ = function (id) { return document.getElementById(id); };
  var graph = new window.GreenflameFlamegraph.FlameGraph($("diff"), $("diff-tooltip"), {
    status: $("diff-selection"),
    onZoom: function () {
      state.zoom = G.zoomText(graph.zoomPath());
      G.writeState(state, DEFAULTS, false);
      G.showZoomChain($("breadcrumb"), graph);
    },
  });
  var timeline = new window.GreenflameTimeSeries.TimeSeries($("compare-timeline"), { onSelect: brushed });
  var loads = 0;
  var deploys = []; // the group's deploy versions, the latest first (GET <group>/deploys)

  /** The URL's state; without any range in it, the latest hour of data against the hour before. */
  function readState() {
    var read = G.readState(DEFAULTS);
    var params = new URLSearchParams(window.location.search);
    if (!RANGE_KEYS.some(function (key) { return params.has(key); })) {
      var ranges = presetRanges("latest-hour");
      read.base_from = ranges[0];
      read.base_to = ranges[1];
      read.from = ranges[2];
      read.to = ranges[3];
    }
    return read;
  }

  /* ---- presets and the chart's two brushes ------------------------------------ */

  /** Preset -> [base_from, base_to, from, to] as Unix seconds (or now-relative text). */
  function presetRanges(name) {
    if (name === "deploy") return deployRanges();
    var span = { "latest-hour": HOUR_S, "hour-yesterday": HOUR_S, "latest-day": DAY_S, "latest-week": 7 * DAY_S }[name];
    if (name === "now-hour") return ["now-2h", "now-1h", "now-1h", ""];
    if (!span) return null;
    var gap = name === "hour-yesterday" ? DAY_S : span;
    return [lastS - span - gap, lastS - gap, lastS - span, lastS].map(String);
  }

  /** The latest deploy's span against the span of the deploy before it (null with fewer than two). */
  function deployRanges() {
    if (deploys.length < 2) return null;
    return [deploys[1], deploys[0]].reduce(function (ranges, deploy) {
      return ranges.concat([Math.floor(deploy.first_seen_unix_ns / 1e9), Math.ceil(deploy.last_seen_unix_ns / 1e9)]);
    }, []).map(String);
  }

  /** The deploy preset's label: the two versions it compares, or why it cannot be chosen. */
  function deployPresetText() {
    var name = "This deploy vs the one before";
    if (deploys.length >= 2) return name + " (" + deploys[0].version + " vs " + deploys[1].version + ")";
    if (deploys.length === 1) return name + " (unavailable: only one deploy seen, " + deploys[0].version + ")";
    return name + " (unavailable: no deploy versions in the profiles; only Lambda function versions are known)";
  }

  function loadDeploys() {
    var option = $("preset-deploy");
    G.getJSON(api + "/deploys").then(function (body) {
      deploys = body.deploys;
      option.disabled = deploys.length < 2;
      option.textContent = deployPresetText();
    }).catch(function (error) {
      option.textContent = "This deploy vs the one before (unavailable: could not load the deploys: " + error.message + ")";
    });
  }

  function applyPreset(name) {
    var ranges = presetRanges(name);
    if (!ranges) return;
    state.base_from = ranges[0];
    state.base_to = ranges[1];
    state.from = ranges[2];
    state.to = ranges[3];
    state.zoom = "";
    G.writeState(state, DEFAULTS, true);
    applyControls();
    load();
  }

  function brushed(fromNs, toNs) {
    var side = $("brush-base").checked ? "base" : "target";
    var from = String(Math.floor(fromNs / 1e9));
    var to = String(Math.ceil(toNs / 1e9));
    if (side === "base") { state.base_from = from; state.base_to = to; } else { state.from = from; state.to = to; }
    // The next drag sets the other side: two drags brush both ranges.
    $(side === "base" ? "brush-target" : "brush-base").checked = true;
    timeline.dragColor = COLORS[side === "base" ? "target" : "base"];
    $("preset").value = "";
    state.zoom = "";
    G.writeState(state, DEFAULTS, true);
    applyControls();
    load();
  }

  function boundNs(text, fallback) {
    if (!text) return fallback;
    var rel = /^now(?:-(\d+)([smhdw]))?$/.exec(text);
    if (rel) {
      var unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2] || "s"];
      return Date.now() * 1e6 - (rel[1] ? Number(rel[1]) * unit * 1e9 : 0);
    }
    if (isFinite(Number(text))) return Number(text) * 1e9;
    var parsed = Date.parse(text);
    return isFinite(parsed) ? parsed * 1e6 : fallback;
  }

  /** The two ranges on the chart (the base only when it is this group's). */
  function showBrushes() {
    var now = Date.now() * 1e6;
    var marks = [{ range: [boundNs(state.from, timeline.from), boundNs(state.to, now)], color: COLORS.target, label: "compared" }];
    if (!state.base_group || state.base_group === page.dataset.group) {
      marks.unshift({ range: [boundNs(state.base_from, timeline.from), boundNs(state.base_to, now)], color: COLORS.base, label: "base" });
    }
    timeline.setMarks(marks);
  }

  /** The chart covers both ranges and the group's latest data, with a margin. */
  function loadTimeline() {
    var lastNs = lastS * 1e9;
    var first = Math.min(boundNs(state.base_from, lastNs - DAY_S * 1e9), boundNs(state.from, lastNs - DAY_S * 1e9));
    var end = Math.max(boundNs(state.base_to, lastNs), boundNs(state.to, lastNs), lastNs);
    var margin = Math.max((end - first) * 0.1, HOUR_S * 1e9);
    var from = Math.max(Math.floor((first - margin) / 1e9), 0);
    var to = Math.ceil((end + margin) / 1e9);
    G.getJSON(api + "/timeseries?from=" + from + "&to=" + to).then(function (body) {
      timeline.setData(body, null);
      showBrushes();
      $("compare-timeline-status").textContent = body.points.length ? "" : "No profiles in this period.";
    }).catch(function (error) {
      $("compare-timeline-status").textContent = "Could not load the chart: " + error.message;
    });
  }

  /* ---- the diff ---------------------------------------------------------------------- */

  function drawLegend() {
    var canvas = $("legend-scale");
    var ctx = canvas.getContext("2d");
    for (var x = 0; x < canvas.width; x++) {
      var change = (x / (canvas.width - 1)) * 2 - 1;
      var intensity = Math.abs(change);
      var lightness = Math.round(90 - 32 * intensity);
      ctx.fillStyle = intensity < 0.02 ? "hsl(0, 0%, 90%)" : change > 0 ? "hsl(2, 80%, " + lightness + "%)" : "hsl(214, 80%, " + lightness + "%)";
      ctx.fillRect(x, 0, 1, canvas.height);
    }
    $("legend-range").textContent = "(full colour: " + G.formatSigned(-graph.diffScale) + " / " + G.formatSigned(graph.diffScale) + ")";
  }

  function describeSide(info, group) {
    var count = info.profile_count + (info.profile_count === 1 ? " profile" : " profiles");
    return group + " " + G.formatLocal(info.from_unix_ns || info.start_time_unix_ns) + " to " +
      G.formatLocal(info.to_unix_ns || info.start_time_unix_ns + info.duration_ns) + " (" + count + ")";
  }

  /** Why the comparison cannot be read, or "" when both sides have profiles. */
  function emptySides(body) {
    var empty = [];
    if (!body.base.profile_count) empty.push("the base range (" + describeSide(body.base, body.base.group) + ")");
    if (!body.target.profile_count) empty.push("the compared range (" + describeSide(body.target, body.target.group) + ")");
    if (!empty.length) return "";
    return "No data in " + empty.join(" or ") + ", so every frame would show as " +
      (body.base.profile_count ? "gone" : "new") + ". Choose a preset, drag a range on the chart, or type other times.";
  }

  function setBusy(text) {
    graph.setBusy(!!text);
    $("diff-container").classList.toggle("is-busy", !!text);
    $("diff-busy").hidden = !text;
    $("diff-busy-text").textContent = text || "";
  }

  function params() {
    var result = { type: state.type };
    FIELDS.forEach(function (key) { result[key] = state[key]; });
    return result;
  }

  function load() {
    var ticket = ++loads;
    $("diff-status").textContent = "Loading\u2026";
    setBusy("Loading\u2026");
    showBrushes();
    G.getJSON(api + "/diff" + G.stateQuery(params(), {})).then(function (body) {
      if (ticket !== loads) return;
      setBusy("");
      var warning = emptySides(body);
      $("diff-warning").hidden = !warning;
      $("diff-warning").textContent = warning;
      var tree = body.flamegraph;
      graph.unit = tree.unit || "samples";
      graph.search = state.search.toLowerCase();
      graph.setTree(warning ? { name: "all", self: 0, total: 0, base_self: 0, base_total: 0, children: [] } : tree, G.parseZoom(state.zoom));
      G.showZoomChain($("breadcrumb"), graph);
      drawLegend();
      showSearchShare();
      $("diff-status").textContent = "Base: " + describeSide(body.base, body.base.group) + ". Compared: " +
        describeSide(body.target, body.target.group) + ".";
      loadTable(ticket, !!warning);
    }).catch(function (error) {
      if (ticket !== loads) return;
      $("diff-status").textContent = "Could not load the comparison: " + error.message;
      setBusy("Could not load the comparison: " + error.message);
    });
  }

  function shareCell(value, label) {
    return G.el("td", { className: "num", "data-label": label }, G.formatPercent(value));
  }

  function loadTable(ticket, empty) {
    var table = $("diff-table");
    var status = $("diff-table-status");
    if (empty) { table.hidden = true; status.textContent = "No table: one side has no data."; return; }
    status.textContent = "Loading\u2026";
    G.getJSON(api + "/diff/functions" + G.stateQuery(params(), {})).then(function (body) {
      if (ticket !== loads) return;
      var rows = body.diff.functions || [];
      var tbody = G.clear(table.tBodies[0]);
      rows.forEach(function (row) {
        var name = G.el("button", { type: "button", className: "link", title: "Highlight in the graph" }, String(row.name));
        name.addEventListener("click", function () { setSearch(String(row.name)); });
        var change = row.change;
        tbody.appendChild(G.el("tr", { "data-kind": row.kind }, [
          G.el("td", { className: "fn frames", "data-label": "Function" }, [name, G.el("div", { className: "detail" }, row.file ? row.file + ":" + row.line : "")]),
          shareCell(row.base_total_share, "Base"),
          shareCell(row.total_share, "Compared"),
          G.el("td", { className: "num " + (change > 0 ? "up" : change < 0 ? "down" : ""), "data-label": "Change" }, G.formatSigned(change)),
        ]));
      });
      table.hidden = rows.length === 0;
      status.textContent = rows.length ? rows.length + " functions, the largest change in share first." : "No functions in either range.";
    }).catch(function (error) {
      if (ticket !== loads) return;
      table.hidden = true;
      status.textContent = "Could not load the table: " + error.message;
    });
  }

  function setSearch(text) {
    state.search = text;
    $("search").value = text;
    graph.setSearch(text);
    showSearchShare();
    G.writeState(state, DEFAULTS, false);
  }

  function showSearchShare() {
    $("search-share").textContent = state.search ? "Matches: " + G.formatPercent(graph.matchShare) + " of the compared total" : "";
  }

  function applyControls() {
    FIELDS.forEach(function (key) { $(key).value = state[key]; });
    $("type").value = state.type;
    $("search").value = state.search;
  }

  $("compare-form").addEventListener("submit", function (event) {
    event.preventDefault();
    FIELDS.forEach(function (key) { state[key] = $(key).value.trim(); });
    state.type = $("type").value;
    state.zoom = "";
    $("preset").value = "";
    G.writeState(state, DEFAULTS, true);
    load();
  });
  $("preset").addEventListener("change", function () { applyPreset(this.value); });
  Array.prototype.forEach.call(document.querySelectorAll("input[name=brush]"), function (radio) {
    radio.addEventListener("change", function () { timeline.dragColor = COLORS[radio.value]; });
  });
  $("search").addEventListener("input", function () { setSearch(this.value); });
  $("reset-zoom").addEventListener("click", function () { graph.resetZoom(); });
  window.addEventListener("popstate", function () {
    state = readState();
    applyControls();
    load();
  });

  timeline.dragColor = COLORS.target;
  applyControls();
  loadTimeline();
  loadDeploys();
  load();
})();
