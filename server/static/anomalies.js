/*
 * The anomalies page: each anomaly's frame, window, reason and score, with links to the
 * comparison of the window against the time before it and to the flame graph of the
 * window, both highlighting the frame.
 */
(function () {
  "use strict";

  var page = document.getElementById("anomalies-page");
  if (!page) return;
  var G = window.Greenflame;
  var status = document.getElementById("anomalies-status");
  var table = document.getElementById("anomalies");

  /** The function part of a frame key ("handler.parse" -> "parse"), for highlighting. */
  function searchText(frame) {
    var text = String(frame || "");
    if (text.charAt(0) === "[") return "";
    var dot = text.lastIndexOf(".");
    return dot > 0 ? text.slice(dot + 1) : text;
  }

  function links(anomaly) {
    var cell = G.el("td", { className: "links" });
    var search = searchText(anomaly.frame);
    // The API builds the comparison's URL (tickets link the same one); only same-site paths are used.
    var compare = typeof anomaly.compare_url === "string" && /^\/[^\/]/.test(anomaly.compare_url) ? anomaly.compare_url : "";
    if (compare) {
      if (search) compare += "&" + new URLSearchParams({ search: search }).toString();
      cell.appendChild(G.el("a", { href: compare }, "Compare with before"));
      cell.appendChild(document.createTextNode(" \u00b7 "));
    }
    var graph = { from: String(anomaly.start || "") };
    if (anomaly.end) graph.to = String(anomaly.end);
    if (search) graph.search = search;
    cell.appendChild(G.el("a", { href: page.dataset.graph + "?" + new URLSearchParams(graph).toString() }, "Flame graph"));
    return cell;
  }

  function show(items) {
    var tbody = G.clear(table.tBodies[0]);
    items.forEach(function (anomaly) {
      var window_ = String(anomaly.start || "") + " to " + String(anomaly.end || "ongoing");
      tbody.appendChild(G.el("tr", {}, [
        G.el("td", { className: "frames" }, String(anomaly.frame || "")),
        G.el("td", {}, window_),
        G.el("td", {}, String(anomaly.reason || "")),
        G.el("td", { className: "num" }, typeof anomaly.score === "number" ? anomaly.score.toFixed(2) : "\u2014"),
        links(anomaly),
      ]));
    });
    table.hidden = items.length === 0;
    status.textContent = items.length ? "" : "No anomalies reported for this group.";
  }

  if (page.dataset.pipeline !== "1") {
    status.textContent = "No anomalies: anomaly detection is not running on this server.";
    return;
  }
  G.getJSON(page.dataset.api + "/anomalies").then(function (body) {
    show(body.anomalies || []);
  }).catch(function (error) {
    table.hidden = true;
    status.textContent = "Could not load the anomalies: " + error.message;
  });
})();
