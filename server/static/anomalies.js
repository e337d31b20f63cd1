/*
 * The anomalies list and one anomaly's detail page. The list shows each anomaly's frame,
 * window (local time), reason and score, with its detail page, the comparison of the window
 * against the time before it, and the flame graph of the window. The detail page explains the
 * score in words and takes feedback (useful or not), which changes what is reported next.
 */
(function () {
  "use strict";

  var G = window.Greenflame;
  var listPage = document.getElementById("anomalies-page");
  var detailPage = document.getElementById("anomaly-page");
  if (!listPage && !detailPage) return;
  var page = listPage || detailPage;

  /** The function part of a frame key ("handler.parse" -> "parse"), for highlighting. */
  function searchText(frame) {
    var text = String(frame || "");
    if (text.charAt(0) === "[") return "";
    var dot = text.lastIndexOf(".");
    return dot > 0 ? text.slice(dot + 1) : text;
  }

  function linkList(anomaly, withDetail) {
    var items = [];
    var search = searchText(anomaly.frame);
    if (withDetail && anomaly.id) {
      items.push(G.el("a", { href: page.dataset.detail + "/" + encodeURIComponent(String(anomaly.id)), className: "anomaly-detail" }, "Details and feedback"));
    }
    // The API builds the comparison's URL (tickets link the same one); only same-site paths are used.
    var compare = typeof anomaly.compare_url === "string" && /^\/[^\/]/.test(anomaly.compare_url) ? anomaly.compare_url : "";
    if (compare) {
      if (search) compare += "&" + new URLSearchParams({ search: search }).toString();
      items.push(G.el("a", { href: compare }, "Compare with before"));
    }
    var graph = { from: String(anomaly.start || "") };
    if (anomaly.end) graph.to = String(anomaly.end);
    if (search) graph.search = search;
    items.push(G.el("a", { href: page.dataset.graph + "?" + new URLSearchParams(graph).toString() }, "Flame graph"));
    var out = [];
    items.forEach(function (item, n) {
      if (n) out.push(" \u00b7 ");
      out.push(item);
    });
    return out;
  }

  function windowNodes(anomaly) {
    return [G.timeElement(anomaly.start), " to ", anomaly.end ? G.timeElement(anomaly.end) : "ongoing"];
  }

  function isShare(anomaly) {
    return /share/.test(String(anomaly.metric || ""));
  }

  function figure(anomaly, value) {
    if (typeof value !== "number") return "\u2014";
    return isShare(anomaly) ? G.formatPercent(value) : G.formatCount(Math.round(value * 100) / 100);
  }

  /** The score in words: how far from the expected value, in the model's standard deviations. */
  function scoreWords(anomaly) {
    var score = typeof anomaly.score === "number" ? anomaly.score : 0;
    var how = score >= 10 ? "far outside" : score >= 5 ? "well outside" : score >= 3 ? "outside" : "near the edge of";
    var what = anomaly.frame && String(anomaly.frame).charAt(0) !== "[" ? "the share of time in " + anomaly.frame : String(anomaly.metric || "the value").replace(/_/g, " ");
    return "Score " + score.toFixed(1) + ": " + what + " went " + (anomaly.direction === "down" ? "down" : "up") + " to " +
      figure(anomaly, anomaly.observed) + " where the model, trained on this series' own earlier days, expected " +
      figure(anomaly, anomaly.baseline) + ". That is " + score.toFixed(1) + " times the usual spread (standard deviations) from the expected value, " +
      how + " its normal range. Normal variation rarely passes 3; the higher the score, the less likely it is chance.";
  }

  /* ---- the list ---------------------------------------------------------------------- */

  function showList(items) {
    var status = document.getElementById("anomalies-status");
    var table = document.getElementById("anomalies");
    var tbody = G.clear(table.tBodies[0]);
    items.forEach(function (anomaly) {
      tbody.appendChild(G.el("tr", {}, [
        G.el("td", { className: "frames", "data-label": "Frame" }, String(anomaly.frame || "")),
        G.el("td", { "data-label": "Window" }, windowNodes(anomaly)),
        G.el("td", { "data-label": "Reason" }, String(anomaly.reason || "")),
        G.el("td", { className: "num", "data-label": "Score", title: scoreWords(anomaly) }, typeof anomaly.score === "number" ? anomaly.score.toFixed(2) : "\u2014"),
        G.el("td", { className: "links", "data-label": "Evidence" }, linkList(anomaly, true)),
      ]));
    });
    table.hidden = items.length === 0;
    status.textContent = items.length ? "Times are in your time zone. The score is how many standard deviations the value left its expected level by." : "No anomalies reported for this group.";
  }

  function loadList() {
    var status = document.getElementById("anomalies-status");
    if (page.dataset.pipeline !== "1") {
      status.textContent = "No anomalies: anomaly detection is not running on this server.";
      return;
    }
    G.getJSON(page.dataset.api + "/anomalies").then(function (body) {
      showList(body.anomalies || []);
    }).catch(function (error) {
      document.getElementById("anomalies").hidden = true;
      status.textContent = "Could not load the anomalies: " + error.message;
    });
  }

  /* ---- one anomaly ----------------------------------------------------------------------- */

  var $ = function (id) { return document.getElementById(id); };

  function showFeedback(anomaly, chosen) {
    var counts = anomaly.feedback || { useful: 0, not_useful: 0 };
    $("feedback-useful").textContent = "Useful (" + counts.useful + ")";
    $("feedback-not-useful").textContent = "Not useful (" + counts.not_useful + ")";
    $("feedback-useful").setAttribute("aria-pressed", chosen === true ? "true" : "false");
    $("feedback-not-useful").setAttribute("aria-pressed", chosen === false ? "true" : "false");
  }

  function sendFeedback(anomaly, useful) {
    $("feedback-status").textContent = "Sending\u2026";
    fetch(page.dataset.feedback, {
      method: "POST",
      headers: G.postHeaders(),
      body: JSON.stringify({ useful: useful }),
    }).then(function (response) {
      G.signInAgain(response);
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body && body.error ? body.error.message : "HTTP " + response.status);
        showFeedback(body, useful);
        $("feedback-status").textContent = "Thank you: recorded, and the group is being analysed again with it.";
      });
    }).catch(function (error) {
      $("feedback-status").textContent = "Could not record the feedback: " + error.message;
    });
  }

  function showDetail(anomaly) {
    $("anomaly-title").textContent = "Anomaly: " + String(anomaly.frame || "");
    $("anomaly-reason").textContent = String(anomaly.reason || "");
    var facts = G.clear($("anomaly-facts"));
    [
      ["Frame", String(anomaly.frame || "")],
      ["Window", windowNodes(anomaly)],
      ["Detected", G.timeElement(anomaly.detected)],
      ["Expected", figure(anomaly, anomaly.baseline)],
      ["Observed", figure(anomaly, anomaly.observed)],
      ["Reported by the latest analysis", anomaly.current ? "yes" : "no (an earlier one)"],
    ].forEach(function (pair) {
      facts.appendChild(G.el("dt", {}, pair[0]));
      facts.appendChild(G.el("dd", {}, pair[1]));
    });
    $("anomaly-score").textContent = scoreWords(anomaly);
    G.append(G.clear($("anomaly-links")), linkList(anomaly, false));
    showFeedback(anomaly, null);
    $("feedback-useful").addEventListener("click", function () { sendFeedback(anomaly, true); });
    $("feedback-not-useful").addEventListener("click", function () { sendFeedback(anomaly, false); });
    $("anomaly-body").hidden = false;
    $("anomaly-status").textContent = "Times are in your time zone.";
  }

  function loadDetail() {
    G.getJSON(page.dataset.api + "/anomalies?all=true").then(function (body) {
      var wanted = page.dataset.anomaly;
      var anomaly = (body.anomalies || []).filter(function (item) { return item.id === wanted; })[0];
      if (!anomaly) { $("anomaly-status").textContent = "This anomaly is no longer stored for the group."; return; }
      showDetail(anomaly);
    }).catch(function (error) {
      $("anomaly-status").textContent = "Could not load the anomaly: " + error.message;
    });
  }

  if (listPage) loadList();
  else loadDetail();
})();
