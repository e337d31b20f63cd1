/*
 * The compare page: a diff flame graph of a base range (or another group) against a
 * compared range, coloured by the change in each frame's share. The form's values, the
 * zoom and the search live in the URL, so a comparison can be linked from a ticket.
 */
(function () {
  "use strict";

  var page = document.getElementById("compare-page");
  if (!page) return;
  var G = window.Greenflame;
  var api = page.dataset.api;
  var FIELDS = ["base_group", "base_from", "base_to", "from", "to"];
  var DEFAULTS = { base_group: "", base_from: "now-2d", base_to: "now-1d", from: "now-1d", to: "", type: "cpu", search: "", zoom: "" };
  var state = G.readState(DEFAULTS);
  var $ = function (id) { return document.getElementById(id); };
  var graph = new window.GreenflameFlamegraph.FlameGraph($("diff"), $("diff-tooltip"), {
    status: $("diff-selection"),
    onZoom: function () {
      state.zoom = G.zoomText(graph.zoomPath());
      G.writeState(state, DEFAULTS, false);
      G.showZoomChain($("breadcrumb"), graph);
    },
  });

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
    return group + " " + G.formatTime(info.from_unix_ns || info.start_time_unix_ns) + " to " +
      G.formatTime(info.to_unix_ns || info.start_time_unix_ns + info.duration_ns) + " (" + count + ")";
  }

  function load() {
    $("diff-status").textContent = "Loading\u2026";
    var params = { type: state.type };
    FIELDS.forEach(function (key) { params[key] = state[key]; });
    G.getJSON(api + "/diff" + G.stateQuery(params, {})).then(function (body) {
      var tree = body.flamegraph;
      graph.unit = tree.unit || "samples";
      graph.search = state.search.toLowerCase();
      graph.setTree(tree, G.parseZoom(state.zoom));
      G.showZoomChain($("breadcrumb"), graph);
      drawLegend();
      showSearchShare();
      $("diff-status").textContent = "Base: " + describeSide(body.base, body.base.group) + ". Compared: " +
        describeSide(body.target, body.target.group) + ".";
    }).catch(function (error) {
      $("diff-status").textContent = "Could not load the comparison: " + error.message;
    });
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
    G.writeState(state, DEFAULTS, true);
    load();
  });
  $("search").addEventListener("input", function () {
    state.search = this.value;
    graph.setSearch(state.search);
    showSearchShare();
    G.writeState(state, DEFAULTS, false);
  });
  $("reset-zoom").addEventListener("click", function () { graph.resetZoom(); });
  window.addEventListener("popstate", function () {
    state = G.readState(DEFAULTS);
    applyControls();
    load();
  });

  applyControls();
  load();
})();
