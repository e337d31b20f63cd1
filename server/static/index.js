/*
 * The groups list: a sparkline of each group's CPU samples over its last 24 hours of data,
 * and its open findings and anomalies (where the server runs the analysis pipeline).
 */
(function () {
  "use strict";

  var page = document.getElementById("index-page");
  var table = document.getElementById("groups");
  if (!page || !table) return;
  var G = window.Greenflame;
  var DAY_S = 86400;
  var OPEN = { "new": true, ongoing: true, reopened: true };

  function sparkline(canvas, points, from, to) {
    var ctx = canvas.getContext("2d");
    var peak = 1;
    points.forEach(function (p) { peak = Math.max(peak, p.cpu); });
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "hsl(12, 80%, 45%)";
    points.forEach(function (p) {
      var x = ((p.start_unix_ns - from) / Math.max(to - from, 1)) * canvas.width;
      var h = Math.max((p.cpu / peak) * (canvas.height - 2), p.cpu ? 1 : 0);
      ctx.fillRect(x, canvas.height - h, Math.max(canvas.width / 96, 1), h);
    });
    canvas.setAttribute("aria-label", "CPU samples: peak " + G.formatCount(peak) + " per bucket");
  }

  function setCount(cell, text) {
    var link = cell.querySelector("a");
    link.textContent = text;
  }

  Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
    var base = page.dataset.api + "/" + encodeURIComponent(row.dataset.group);
    var last = Number(row.dataset.last);
    var canvas = row.querySelector("canvas");
    if (last) {
      var to = Math.ceil(last / 1e9);
      G.getJSON(base + "/timeseries?from=" + (to - DAY_S) + "&to=" + to + "&step=900").then(function (body) {
        sparkline(canvas, body.points, body.from_unix_ns, body.to_unix_ns);
      }).catch(function () { canvas.setAttribute("aria-label", "No activity data"); });
    }
    if (page.dataset.pipeline !== "1") {
      setCount(row.querySelector(".findings-count"), "\u2014");
      setCount(row.querySelector(".anomalies-count"), "\u2014");
      return;
    }
    G.getJSON(base + "/findings").then(function (body) {
      var open = (body.findings || []).filter(function (f) { return OPEN[f.state]; }).length;
      setCount(row.querySelector(".findings-count"), String(open));
    }).catch(function () { setCount(row.querySelector(".findings-count"), "\u2014"); });
    G.getJSON(base + "/anomalies").then(function (body) {
      setCount(row.querySelector(".anomalies-count"), String((body.anomalies || []).length));
    }).catch(function () { setCount(row.querySelector(".anomalies-count"), "\u2014"); });
  });
})();
