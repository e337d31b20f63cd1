/*
 * The group page: range chart, flame graph, functions table, sandwich view and
 * recommendations. Every control's value lives in the URL (so a view can be shared) and
 * everything from the API is inserted as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var page = document.getElementById("group-page");
  if (!page) return;
  var G = window.Greenflame;
  var api = page.dataset.api;
  var DEFAULTS = {
    from: "", to: "", type: "cpu", view: "top-down", color: "name", search: "", zoom: "",
    label: [], focus: "", focus_file: "", fn: "", fn_file: "", sort: "self", q: "",
  };
  var state = G.readState(DEFAULTS);
  var $ = function (id) { return document.getElementById(id); };
  var lib = window.GreenflameFlamegraph;
  var graph = new lib.FlameGraph($("flamegraph"), $("flamegraph-tooltip"), {
    color: state.color,
    status: $("flamegraph-selection"),
    onZoom: function () { saveZoom(); G.showZoomChain($("breadcrumb"), graph); },
    onSelect: function (index) { $("open-sandwich").hidden = index <= 0 || graph.data.pruned[index] > 0; },
  });
  var callers = new lib.FlameGraph($("callers"), $("callers-tooltip"), { inverted: true, color: state.color });
  var callees = new lib.FlameGraph($("callees"), $("callees-tooltip"), { color: state.color });
  var timeline = new window.GreenflameTimeSeries.TimeSeries($("timeline"), { onSelect: selectRange });
  var functionRows = [];
  var loaded = { graph: 0 };

  function save(push) { G.writeState(state, DEFAULTS, push); updateCompareLink(); }

  /** The API query for the current range, type and filters, plus `extra`. */
  function query(extra, withFilters) {
    var params = { from: state.from, to: state.to, type: state.type };
    if (withFilters) {
      params.label = state.label;
      params.focus = state.focus;
      params.focus_file = state.focus_file;
    }
    Object.keys(extra || {}).forEach(function (key) { params[key] = extra[key]; });
    return G.stateQuery(params, { type: "" });
  }

  /* ---- range ------------------------------------------------------------------ */

  function rangeSelectValue() {
    var select = $("range");
    var custom = select.querySelector("option[data-custom]");
    if (custom) select.removeChild(custom);
    if (!state.to && (state.from === "" || /^now-\d+[smhdw]$/.test(state.from))) {
      var preset = Array.prototype.some.call(select.options, function (o) { return o.value === state.from; });
      if (preset) { select.value = state.from; return; }
    }
    var label = "Custom: " + describeBound(state.from) + " to " + describeBound(state.to || "now");
    select.appendChild(G.el("option", { value: "custom", "data-custom": "1" }, label));
    select.value = "custom";
  }

  function describeBound(text) {
    var seconds = Number(text);
    if (text && isFinite(seconds)) return G.formatTime(seconds * 1e9);
    return text || "start";
  }

  function selectRange(fromNs, toNs) {
    state.from = String(Math.floor(fromNs / 1e9));
    state.to = String(Math.ceil(toNs / 1e9));
    state.zoom = "";
    save(true);
    rangeSelectValue();
    reloadData();
  }

  function rangeBoundsNs() {
    var now = Date.now() * 1e6;
    function parse(text, fallback) {
      if (!text) return fallback;
      var rel = /^now(?:-(\d+)([smhdw]))?$/.exec(text);
      if (rel) {
        var unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[rel[2] || "s"];
        return now - (rel[1] ? Number(rel[1]) * unit * 1e9 : 0);
      }
      if (isFinite(Number(text))) return Number(text) * 1e9;
      var parsed = Date.parse(text);
      return isFinite(parsed) ? parsed * 1e6 : fallback;
    }
    return [parse(state.from, null), parse(state.to, null)];
  }

  function loadTimeline() {
    G.getJSON(api + "/timeseries").then(function (body) {
      var bounds = rangeBoundsNs();
      var selection = bounds[0] !== null || bounds[1] !== null
        ? [bounds[0] !== null ? bounds[0] : body.from_unix_ns, bounds[1] !== null ? bounds[1] : body.to_unix_ns] : null;
      timeline.setData(body, selection);
      $("timeline-status").textContent = body.points.length ? "" : "No profiles yet.";
    }).catch(function (error) {
      $("timeline-status").textContent = "Could not load the chart: " + error.message;
    });
  }

  /* ---- flame graph ------------------------------------------------------------- */

  function saveZoom() {
    state.zoom = G.zoomText(graph.zoomPath());
    save(false);
  }

  function loadFlamegraph() {
    var ticket = ++loaded.graph;
    $("flamegraph-status").textContent = "Loading\u2026";
    G.getJSON(api + "/flamegraph" + query({ view: state.view }, true)).then(function (body) {
      if (ticket !== loaded.graph) return;
      var tree = body.flamegraph;
      graph.unit = tree.unit || "samples";
      graph.search = state.search.toLowerCase();
      graph.setTree(tree, G.parseZoom(state.zoom));
      G.showZoomChain($("breadcrumb"), graph);
      showSearchShare();
      showFunctions();
      var profiles = body.profile_count + (body.profile_count === 1 ? " profile, " : " profiles, ");
      var fallback = tree.sample_type && tree.sample_type !== body.type ? " (no " + body.type + " samples: showing " + tree.sample_type + ")" : "";
      $("flamegraph-status").textContent = tree.total
        ? profiles + G.formatCount(tree.total) + " " + graph.unit + fallback + ". Click a frame to zoom."
        : "No samples in this range.";
    }).catch(function (error) {
      if (ticket === loaded.graph) $("flamegraph-status").textContent = "Could not load the flame graph: " + error.message;
    });
  }

  function showSearchShare() {
    $("search-share").textContent = state.search ? "Matches: " + G.formatPercent(graph.matchShare) + " of the total" : "";
  }

  function showFocus() {
    $("focus-status").hidden = !state.focus;
    $("focus-text").textContent = state.focus ? "Only stacks through " + state.focus + (state.focus_file ? " (" + state.focus_file + ")" : "") + "." : "";
  }

  /* ---- functions table ----------------------------------------------------------- */

  function loadFunctions() {
    $("functions-status").textContent = "Loading\u2026";
    G.getJSON(api + "/functions" + query({ limit: 2000 }, true)).then(function (body) {
      functionRows = body.functions || [];
      showFunctions();
    }).catch(function (error) {
      functionRows = [];
      showFunctions();
      $("functions-status").textContent = "Could not load the functions: " + error.message;
    });
  }

  function showFunctions() {
    var filter = state.q.toLowerCase();
    var key = state.sort;
    var rows = functionRows.filter(function (row) {
      return !filter || String(row.name).toLowerCase().indexOf(filter) !== -1 || String(row.file).toLowerCase().indexOf(filter) !== -1;
    });
    rows.sort(function (a, b) {
      if (key === "name") return String(a.name) < String(b.name) ? -1 : String(a.name) > String(b.name) ? 1 : 0;
      return b[key] - a[key];
    });
    var total = graph.data.total[0] || 1;
    var tbody = G.clear($("functions").tBodies[0]);
    rows.slice(0, 300).forEach(function (row) {
      var name = G.el("button", { type: "button", className: "link", title: "Sandwich view of this function" }, String(row.name));
      name.addEventListener("click", function () { openSandwich(String(row.name), String(row.file || "")); });
      var where = G.el("div", { className: "detail" }, row.file ? row.file + ":" + row.line : "");
      tbody.appendChild(G.el("tr", { "data-kind": row.kind }, [
        G.el("td", { className: "fn" }, [name, where]),
        G.el("td", { className: "num" }, G.formatPercent(row.self / total)),
        G.el("td", { className: "num" }, G.formatPercent(row.total / total)),
      ]));
    });
    Array.prototype.forEach.call($("functions").tHead.rows[0].cells, function (cell) {
      var button = cell.querySelector("button");
      cell.setAttribute("aria-sort", button.dataset.sort === key ? (key === "name" ? "ascending" : "descending") : "none");
    });
    $("functions-status").textContent = functionRows.length
      ? rows.length + " of " + functionRows.length + " functions" + (rows.length > 300 ? " (first 300 shown)" : "")
      : "No functions in this range.";
  }

  /* ---- sandwich ------------------------------------------------------------------- */

  function openSandwich(name, file) {
    state.fn = name;
    state.fn_file = file || "";
    save(true);
    loadSandwich();
  }

  function loadSandwich() {
    var panel = $("sandwich-panel");
    panel.hidden = !state.fn;
    if (!state.fn) return;
    $("sandwich-name").textContent = state.fn;
    $("sandwich-status").textContent = "Loading\u2026";
    var extra = { "function": state.fn, file: state.fn_file };
    G.getJSON(api + "/sandwich" + query(extra, false) + labelQuery()).then(function (body) {
      callers.unit = callees.unit = body.sandwich.callees.unit || "samples";
      callers.setTree(body.sandwich.callers);
      callees.setTree(body.sandwich.callees);
      var total = body.sandwich.callees.total;
      $("sandwich-status").textContent = total ? G.formatCount(total) + " " + callees.unit + " pass through this function." : "The function has no samples in this range.";
      panel.scrollIntoView({ block: "start" });
    }).catch(function (error) {
      $("sandwich-status").textContent = "Could not load the sandwich view: " + error.message;
    });
  }

  function labelQuery() {
    return state.label.map(function (item) { return "&label=" + encodeURIComponent(item); }).join("");
  }

  /* ---- labels ----------------------------------------------------------------------- */

  function loadLabels() {
    G.getJSON(api + "/labels" + query({}, false)).then(function (body) {
      var select = $("label");
      while (select.options.length > 1) select.remove(1);
      Object.keys(body.labels).forEach(function (key) {
        var group = G.el("optgroup", { label: key });
        body.labels[key].forEach(function (item) {
          group.appendChild(G.el("option", { value: key + "=" + item.value }, item.value));
        });
        select.appendChild(group);
      });
      var current = state.label[0] || "";
      if (current && !Array.prototype.some.call(select.options, function (o) { return o.value === current; })) {
        select.appendChild(G.el("option", { value: current }, current));
      }
      select.value = current;
    }).catch(function () { /* the filter stays at "All samples" */ });
  }

  /* ---- recommendations --------------------------------------------------------------- */

  function loadRecommendations() {
    var status = $("recommendations-status");
    var table = $("recommendations");
    status.textContent = "Loading\u2026";
    G.getJSON(api + "/recommendations" + query({}, false)).then(function (body) {
      var items = body.recommendations || [];
      var tbody = G.clear(table.tBodies[0]);
      items.forEach(function (item) {
        var finding = G.el("td", { title: item.rule ? String(item.rule) : null }, String(item.title || item.rule || ""));
        if (item.summary) finding.appendChild(G.el("div", { className: "detail" }, String(item.summary)));
        var frames = G.el("td", { className: "frames" });
        (item.frames || []).forEach(function (frame, n) {
          var name = G.frameName(frame);
          if (n) frames.appendChild(document.createTextNode(", "));
          var link = G.el("a", { href: "?" + new URLSearchParams({ focus: name, search: name }).toString() }, name);
          frames.appendChild(link);
        });
        var expected = typeof item.expected_share === "number" ? G.formatPercent(item.expected_share) : "\u2014";
        if (typeof item.times_expected === "number") expected += " (" + item.times_expected.toFixed(1) + "\u00d7 over)";
        tbody.appendChild(G.el("tr", {}, [
          finding, frames,
          G.el("td", { className: "num" }, typeof item.share === "number" ? G.formatPercent(item.share) : "\u2014"),
          G.el("td", { className: "num" }, expected),
          G.el("td", { className: "num" }, G.money(item.cost_usd_per_month)),
          G.el("td", { className: "num" }, G.mass(item.co2e_kg_per_month)),
        ]));
      });
      table.hidden = items.length === 0;
      status.textContent = items.length ? "" : "No recommendations for this range.";
    }).catch(function (error) {
      table.hidden = true;
      status.textContent = "Could not load the recommendations: " + error.message;
    });
  }

  /* ---- compare link ---------------------------------------------------------------- */

  function updateCompareLink() {
    var bounds = rangeBoundsNs();
    var link = $("compare-link");
    var params = { type: state.type };
    var rel = /^now-(\d+)([smhdw])$/.exec(state.from);
    if (rel && !state.to) {
      params.from = state.from;
      params.base_from = "now-" + 2 * Number(rel[1]) + rel[2];
      params.base_to = state.from;
    } else if (bounds[0] !== null && bounds[1] !== null) {
      var length = bounds[1] - bounds[0];
      params.from = state.from;
      params.to = state.to;
      params.base_from = G.isoTime(bounds[0] - length);
      params.base_to = G.isoTime(bounds[0]);
    } else {
      params.from = "now-1d";
      params.base_from = "now-2d";
      params.base_to = "now-1d";
    }
    link.href = page.dataset.compare + G.stateQuery(params, { type: "cpu" });
  }

  /* ---- wiring ------------------------------------------------------------------------ */

  function reloadData() {
    loadFlamegraph();
    loadFunctions();
    loadLabels();
    loadRecommendations();
    loadSandwich();
    loadTimeline();
  }

  function applyControls() {
    rangeSelectValue();
    $("type").value = state.type;
    $("view").value = state.view;
    $("color").value = state.color;
    $("search").value = state.search;
    $("functions-filter").value = state.q;
    $("color-legend").hidden = state.color !== "kind";
    showFocus();
  }

  $("range").addEventListener("change", function () {
    if (this.value === "custom") return;
    state.from = this.value;
    state.to = "";
    state.zoom = "";
    save(true);
    rangeSelectValue();
    reloadData();
  });
  $("type").addEventListener("change", function () {
    state.type = this.value;
    save(true);
    loadFlamegraph();
    loadFunctions();
    loadSandwich();
  });
  $("view").addEventListener("change", function () {
    state.view = this.value;
    state.zoom = "";
    save(true);
    loadFlamegraph();
  });
  $("color").addEventListener("change", function () {
    state.color = this.value;
    $("color-legend").hidden = state.color !== "kind";
    save(false);
    [graph, callers, callees].forEach(function (g) { g.setColor(state.color); });
  });
  $("label").addEventListener("change", function () {
    state.label = this.value ? [this.value] : [];
    state.zoom = "";
    save(true);
    loadFlamegraph();
    loadFunctions();
    loadSandwich();
  });
  $("search").addEventListener("input", function () {
    state.search = this.value;
    graph.setSearch(state.search);
    showSearchShare();
    save(false);
  });
  $("functions-filter").addEventListener("input", function () {
    state.q = this.value;
    showFunctions();
    save(false);
  });
  Array.prototype.forEach.call(document.querySelectorAll("#functions thead button"), function (button) {
    button.addEventListener("click", function () {
      state.sort = button.dataset.sort;
      showFunctions();
      save(false);
    });
  });
  $("reset-zoom").addEventListener("click", function () { graph.resetZoom(); });
  $("clear-focus").addEventListener("click", function () {
    state.focus = "";
    state.focus_file = "";
    state.zoom = "";
    save(true);
    showFocus();
    loadFlamegraph();
    loadFunctions();
  });
  $("open-sandwich").addEventListener("click", function () {
    var index = graph.selected;
    if (index > 0) openSandwich(graph.data.names[index], graph.data.files[index]);
  });
  $("close-sandwich").addEventListener("click", function () {
    state.fn = "";
    state.fn_file = "";
    save(true);
    loadSandwich();
  });
  $("controls").addEventListener("submit", function (event) { event.preventDefault(); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement.tagName !== "INPUT") {
      event.preventDefault();
      $("search").focus();
    }
  });
  window.addEventListener("popstate", function () {
    state = G.readState(DEFAULTS);
    applyControls();
    graph.setColor(state.color);
    reloadData();
  });

  applyControls();
  updateCompareLink();
  reloadData();
})();
