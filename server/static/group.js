/*
 * The group page: summary bar, range chart, flame graph with its minimap, functions table,
 * sandwich view and recommendations. Every control's value lives in the URL (so a view can
 * be shared) and everything from the API is inserted as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var page = document.getElementById("group-page");
  if (!page) return;
  var G = window.Greenflame;
  var api = page.dataset.api;
  var DEFAULTS = {
    from: "", to: "", type: "cpu", view: "top-down", order: "name", color: "name", search: "", zoom: "",
    label: [], focus: "", focus_file: "", fn: "", fn_file: "", sort: "self", q: "",
  };
  var state = G.readState(DEFAULTS);
  var $ = function (id) { return document.getElementById(id); };
  var lib = window.GreenflameFlamegraph;
  var minimap = null;
  var graph = new lib.FlameGraph($("flamegraph"), $("flamegraph-tooltip"), {
    color: state.color,
    order: state.order,
    status: $("flamegraph-selection"),
    scroller: $("flamegraph-scroll"),
    onZoom: function () { saveZoom(); G.showZoomChain($("breadcrumb"), graph); },
    onSelect: function (index) { $("open-sandwich").disabled = index <= 0 || graph.data.pruned[index] > 0; },
    onSandwich: function (index) { openSandwich(graph.data.names[index], graph.data.files[index]); },
    onDraw: function () { if (minimap) minimap.schedule(); },
  });
  minimap = new lib.Minimap($("minimap"), graph, $("flamegraph-scroll"));
  var callers = new lib.FlameGraph($("callers"), $("callers-tooltip"), { inverted: true, color: state.color });
  var callees = new lib.FlameGraph($("callees"), $("callees-tooltip"), { color: state.color });
  var timeline = new window.GreenflameTimeSeries.TimeSeries($("timeline"), { onSelect: selectRange });
  var functionRows = [];
  var findingNames = {};
  var loaded = { graph: 0, recommendations: 0 };

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

  /** Dim the graph and make it inert while loading or after an error, saying which. */
  function setBusy(text, retry) {
    var busy = !!text;
    graph.setBusy(busy);
    $("flamegraph-container").classList.toggle("is-busy", busy);
    $("flamegraph-busy").hidden = !busy;
    $("flamegraph-busy-text").textContent = text || "";
    $("flamegraph-retry").hidden = !retry;
    $("flamegraph").setAttribute("aria-busy", busy ? "true" : "false");
  }

  function loadFlamegraph() {
    var ticket = ++loaded.graph;
    $("flamegraph-status").textContent = "Loading\u2026";
    setBusy("Loading\u2026", false);
    G.getJSON(api + "/flamegraph" + query({ view: state.view }, true)).then(function (body) {
      if (ticket !== loaded.graph) return;
      setBusy("", false);
      var tree = body.flamegraph;
      graph.unit = tree.unit || "samples";
      graph.periodNs = body.sample_period_ns || 0;
      graph.search = state.search.toLowerCase();
      graph.setTree(tree, G.parseZoom(state.zoom));
      G.showZoomChain($("breadcrumb"), graph);
      showSearchShare();
      showFunctions();
      var profiles = body.profile_count + (body.profile_count === 1 ? " profile, " : " profiles, ");
      var fallback = tree.sample_type && tree.sample_type !== body.type ? " (no " + body.type + " samples: showing " + tree.sample_type + ")" : "";
      var aged = body.answer_age_s === undefined ? "" : " As of " + body.answer_age_s + " s ago: the server is busy, so it sent its last answer.";
      $("flamegraph-status").textContent = (tree.total
        ? profiles + graph.formatValue(tree.total) + fallback + ". Click a frame to zoom; right-click or S for its sandwich view."
        : "No samples in this range. Choose a longer range, or drag across the chart above.") + aged;
    }).catch(function (error) {
      if (ticket !== loaded.graph) return;
      $("flamegraph-status").textContent = "Could not load the flame graph: " + error.message;
      setBusy("Could not load the flame graph: " + error.message + ". The graph shown is out of date.", true);
    });
  }

  function showSearchShare() {
    var count = graph.matchList.length;
    var position = graph.matchAt === -1 ? "" : " (match " + (graph.matchAt + 1) + " of " + count + ")";
    $("search-share").textContent = state.search
      ? "Matches: " + G.formatPercent(graph.matchShare) + " of the total" + position
      : "";
    $("search-prev").disabled = $("search-next").disabled = count === 0;
  }

  function stepSearch(direction) {
    graph.stepMatch(direction);
    showSearchShare();
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

  function matchesText(row, text) {
    return !text || String(row.name).toLowerCase().indexOf(text) !== -1 || String(row.file).toLowerCase().indexOf(text) !== -1;
  }

  /** A value as time ("0.21 s") with its share of the range below it. */
  function valueCell(value, total) {
    var seconds = G.valueSeconds(value, graph.unit, graph.periodNs);
    var main = seconds === null ? G.formatCount(value) : G.formatDuration(seconds);
    return G.el("td", { className: "num", title: G.formatCount(value) + " " + graph.unit }, [
      main, G.el("div", { className: "detail" }, G.formatPercent(value / total)),
    ]);
  }

  function showFunctions() {
    var filter = state.q.toLowerCase();
    var search = state.search.toLowerCase();
    var key = state.sort;
    var rows = functionRows.filter(function (row) { return matchesText(row, filter) && matchesText(row, search); });
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
      var finding = findingNames[String(row.name)];
      tbody.appendChild(G.el("tr", { "data-kind": row.kind, "data-finding": finding ? "1" : null, title: finding || null }, [
        G.el("td", { className: "fn" }, [name, where]),
        valueCell(row.self, total),
        valueCell(row.total, total),
      ]));
    });
    Array.prototype.forEach.call($("functions").tHead.rows[0].cells, function (cell) {
      var button = cell.querySelector("button");
      cell.setAttribute("aria-sort", button.dataset.sort === key ? (key === "name" ? "ascending" : "descending") : "none");
    });
    var unitNote = G.valueSeconds(1, graph.unit, graph.periodNs) === null ? " (" + graph.unit + ")" : " (time in the range, share of the total)";
    $("functions-status").textContent = functionRows.length
      ? rows.length + " of " + functionRows.length + " functions" + (search ? " matching the search" : "") +
        (rows.length > 300 ? " (first 300 shown)" : "") + unitNote
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
          group.appendChild(G.el("option", { value: G.labelParam(key, item.value) }, item.value));
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

  /** The flame graph of this range focused on a finding's frame (the range, type and file kept). */
  function evidenceHref(frame, item) {
    var name = G.frameName(frame);
    var params = { from: state.from, to: state.to, type: item.sample_type === "wall" ? "wall" : state.type, focus: name, search: name };
    if (frame && typeof frame === "object" && frame.file) params.focus_file = String(frame.file);
    return G.stateQuery(params, { type: "cpu" }) || "?";
  }

  function showSummary(items, body) {
    var cost = 0, co2e = 0, costs = 0;
    items.forEach(function (item) {
      if (typeof item.cost_usd_per_month === "number") { cost += item.cost_usd_per_month; costs++; }
      if (typeof item.co2e_kg_per_month === "number") co2e += item.co2e_kg_per_month;
    });
    $("summary-findings").textContent = String(items.length);
    $("summary-findings").parentNode.classList.toggle("has-findings", items.length > 0);
    $("summary-cost").textContent = costs ? G.money(cost) : "\u2014";
    $("summary-co2e").textContent = costs ? G.mass(co2e) : "\u2014";
    var from = body.profile_count ? body.start_time_unix_ns : body.from_unix_ns;
    var to = body.profile_count ? body.start_time_unix_ns + body.duration_ns : body.to_unix_ns;
    $("summary-range").textContent = (rangeName() + ": ") + G.formatLocal(from) + " \u2013 " + G.formatLocal(to) +
      " (" + body.profile_count + (body.profile_count === 1 ? " profile)" : " profiles)");
    showSamplingNotice(body.sampling || {}, body.profile_count);
  }

  /** Never silently: say when the agent's CPU budget lowered the sampling rate in the range, or its
   * sampler, waiting for busy threads, sampled below the rate asked. */
  function showSamplingNotice(sampling, profiles) {
    var notice = $("sampling-notice");
    var limited = typeof sampling.rate_limited_reports === "number" ? sampling.rate_limited_reports : 0;
    var late = typeof sampling.late_reports === "number" ? sampling.late_reports : 0;
    notice.hidden = limited === 0 && late === 0;
    if (notice.hidden) return;
    var of = function (count) { return count + " of " + profiles + (profiles === 1 ? " report" : " reports"); };
    var parts = [];
    if (limited) {
      var text = "The agent's CPU budget lowered the sampling rate in " + of(limited);
      if (typeof sampling.lowest_rate_hz === "number") text += " (lowest " + Math.round(sampling.lowest_rate_hz) + " Hz)";
      parts.push(text);
    }
    if (late) parts.push((limited ? "its" : "The agent's") + " sampler waited for busy threads and sampled below the rate asked in " + of(late));
    var sentence = parts.join("; ");
    if (typeof sampling.rate_hz === "number") sentence += ". The figures are scaled to the mean rate achieved, " + Math.round(sampling.rate_hz) + " Hz";
    notice.textContent = sentence + "; a function seen less often than once a sampling period may be missing.";
  }

  function rangeName() {
    var select = $("range");
    var option = select.options[select.selectedIndex];
    return option ? option.textContent.replace(/^Custom: .*/, "Chosen range") : "Range";
  }

  function markFindings(items) {
    var marks = [];
    findingNames = {};
    items.forEach(function (item) {
      (item.frames || []).forEach(function (frame) {
        var name = G.frameName(frame);
        if (!name) return;
        marks.push({ name: name, file: frame && typeof frame === "object" && frame.file ? String(frame.file) : "", title: String(item.title || item.rule || "") });
        findingNames[name] = String(item.title || item.rule || "");
      });
    });
    graph.setMarks(marks);
    $("marker-legend").classList.toggle("is-empty", marks.length === 0);
    showFunctions();
  }

  function loadRecommendations() {
    var status = $("recommendations-status");
    var table = $("recommendations");
    var ticket = ++loaded.recommendations;
    status.textContent = "Loading\u2026";
    ["summary-findings", "summary-cost", "summary-co2e"].forEach(function (id) { $(id).textContent = "\u2026"; });
    G.getJSON(api + "/recommendations" + query({}, false)).then(function (body) {
      if (ticket !== loaded.recommendations) return;
      var items = body.recommendations || [];
      showSummary(items, body);
      markFindings(items);
      var tbody = G.clear(table.tBodies[0]);
      items.forEach(function (item) {
        var finding = G.el("td", { title: item.rule ? String(item.rule) : null, "data-label": "Finding" }, String(item.title || item.rule || ""));
        if (item.summary) finding.appendChild(G.el("div", { className: "detail" }, String(item.summary)));
        if (page.dataset.pipeline === "1" && item.fingerprint) {
          var detail = page.dataset.findings + "/" + encodeURIComponent(String(item.fingerprint));
          finding.appendChild(G.el("div", { className: "detail" }, G.el("a", { href: detail, className: "finding-detail" }, "Details, fix and history")));
        }
        var frames = G.el("td", { className: "frames", "data-label": "Frames" });
        (item.frames || []).forEach(function (frame, n) {
          var name = G.frameName(frame);
          if (n) frames.appendChild(document.createTextNode(", "));
          frames.appendChild(G.el("a", { href: evidenceHref(frame, item) }, name));
        });
        var expected = typeof item.expected_share === "number" ? G.formatPercent(item.expected_share) : "\u2014";
        if (typeof item.times_expected === "number") expected += " (" + item.times_expected.toFixed(1) + "\u00d7 over)";
        tbody.appendChild(G.el("tr", {}, [
          finding, frames,
          G.el("td", { className: "num", "data-label": "Share" }, typeof item.share === "number" ? G.formatPercent(item.share) : "\u2014"),
          G.el("td", { className: "num", "data-label": "Expected" }, expected),
          G.el("td", { className: "num", "data-label": "$/month" }, G.money(item.cost_usd_per_month)),
          G.el("td", { className: "num", "data-label": "kg CO2e/month" }, G.mass(item.co2e_kg_per_month)),
        ]));
      });
      table.hidden = items.length === 0;
      status.textContent = items.length ? "" : "No recommendations for this range.";
    }).catch(function (error) {
      if (ticket !== loaded.recommendations) return;
      table.hidden = true;
      ["summary-findings", "summary-cost", "summary-co2e"].forEach(function (id) { $(id).textContent = "\u2014"; });
      $("summary-range").textContent = "Could not load the figures";
      $("sampling-notice").hidden = true;
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
    }  // else: all data, and the compare page opens on the latest hour of data against the hour before
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
    $("order").value = state.order;
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
  $("order").addEventListener("change", function () {
    state.order = this.value;
    save(false);
    graph.setOrder(state.order);
    showSearchShare();
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
    showFunctions();
    save(false);
  });
  $("search").addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    event.preventDefault();
    stepSearch(event.shiftKey ? -1 : 1);
  });
  $("search-next").addEventListener("click", function () { stepSearch(1); });
  $("search-prev").addEventListener("click", function () { stepSearch(-1); });
  $("flamegraph-retry").addEventListener("click", function () { loadFlamegraph(); });
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
    graph.order = state.order;
    reloadData();
  });

  applyControls();
  updateCompareLink();
  reloadData();
})();
