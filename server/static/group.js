/*
 * The group page: fetches the flame graph and recommendations from the API and shows them.
 * Everything from the API is inserted as text (textContent), never as HTML.
 */
(function () {
  "use strict";

  var page = document.getElementById("group-page");
  if (!page) return;
  var api = page.dataset.api;
  var lib = window.GreenflameFlamegraph;
  var graph = new lib.FlameGraph(document.getElementById("flamegraph"), document.getElementById("flamegraph-tooltip"));
  var rangeInput = document.getElementById("range");
  var typeInput = document.getElementById("type");
  var searchInput = document.getElementById("search");
  var graphStatus = document.getElementById("flamegraph-status");
  var recStatus = document.getElementById("recommendations-status");
  var recTable = document.getElementById("recommendations");

  function query(extra) {
    var params = new URLSearchParams();
    if (rangeInput.value) params.set("from", rangeInput.value);
    Object.keys(extra).forEach(function (key) { params.set(key, extra[key]); });
    var text = params.toString();
    return text ? "?" + text : "";
  }

  /** GET a JSON document; rejects with the API's one-line error message. */
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (response.ok && body) return body;
        var message = body && body.error && body.error.message ? body.error.message : "HTTP " + response.status;
        throw new Error(message);
      });
    });
  }

  function loadFlamegraph() {
    graphStatus.textContent = "Loading\u2026";
    getJSON(api + "/flamegraph" + query({ type: typeInput.value })).then(function (body) {
      var tree = body.flamegraph;
      var unit = tree.unit || "samples";
      graph.unit = unit;
      graph.setTree(tree);
      graph.setSearch(searchInput.value);
      var profiles = body.profile_count + (body.profile_count === 1 ? " profile, " : " profiles, ");
      var fallback = tree.sample_type && tree.sample_type !== body.type ? " (no " + body.type + " samples: showing " + tree.sample_type + ")" : "";
      graphStatus.textContent = tree.total
        ? profiles + lib.formatCount(tree.total) + " " + unit + fallback + ". Click a frame to zoom."
        : "No samples in this range.";
    }).catch(function (error) {
      graphStatus.textContent = "Could not load the flame graph: " + error.message;
    });
  }

  function loadRecommendations() {
    recStatus.textContent = "Loading\u2026";
    getJSON(api + "/recommendations" + query({})).then(function (body) {
      showRecommendations(body.recommendations || []);
    }).catch(function (error) {
      recTable.hidden = true;
      recStatus.textContent = "Could not load the recommendations: " + error.message;
    });
  }

  function frameText(frame) {
    if (frame === null || frame === undefined) return "";
    if (typeof frame !== "object") return String(frame);
    return String(frame["function"] || frame.name || "");
  }

  function money(value) {
    return typeof value === "number" ? "$" + value.toFixed(2) : "\u2014";
  }

  function mass(value) {
    return typeof value === "number" ? value.toFixed(3) : "\u2014";
  }

  function share(value) {
    return typeof value === "number" ? lib.formatPercent(value) : "\u2014";
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function showRecommendations(items) {
    var body = recTable.tBodies[0];
    while (body.firstChild) body.removeChild(body.firstChild);
    items.forEach(function (item) {
      var row = document.createElement("tr");
      var finding = cell(row, String(item.title || item.rule || ""));
      if (item.rule) finding.title = String(item.rule);
      if (item.summary) {
        var summary = document.createElement("div");
        summary.className = "detail";
        summary.textContent = String(item.summary);
        finding.appendChild(summary);
      }
      cell(row, (item.frames || []).map(frameText).join(", "), "frames");
      cell(row, share(item.share), "num");
      var expected = share(item.expected_share);
      if (typeof item.times_expected === "number") expected += " (" + item.times_expected.toFixed(1) + "\u00d7 over)";
      cell(row, expected, "num");
      cell(row, money(item.cost_usd_per_month), "num");
      cell(row, mass(item.co2e_kg_per_month), "num");
      body.appendChild(row);
    });
    recTable.hidden = items.length === 0;
    recStatus.textContent = items.length ? "" : "No recommendations for this range.";
  }

  function reload() {
    loadFlamegraph();
    loadRecommendations();
  }

  rangeInput.addEventListener("change", reload);
  typeInput.addEventListener("change", loadFlamegraph);
  searchInput.addEventListener("input", function () { graph.setSearch(searchInput.value); });
  document.getElementById("reset-zoom").addEventListener("click", function () { graph.resetZoom(); });
  document.getElementById("controls").addEventListener("submit", function (event) { event.preventDefault(); });
  reload();
})();
