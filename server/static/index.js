/*
 * The groups list: one request for every group's overview (activity over its last day of
 * data, open findings with their cost and CO2e, anomalies), then the groups whose open
 * findings cost most are moved to the top, so the list says which group to open first.
 */
(function () {
  "use strict";

  var page = document.getElementById("index-page");
  var table = document.getElementById("groups");
  if (!page || !table) return;
  var G = window.Greenflame;

  function sparkline(canvas, activity) {
    var ctx = canvas.getContext("2d");
    var points = activity.points || [];
    var from = activity.from_unix_ns || 0;
    var to = activity.to_unix_ns || 1;
    var peak = 1;
    points.forEach(function (p) { peak = Math.max(peak, p.cpu); });
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "hsl(12, 80%, 45%)";
    points.forEach(function (p) {
      var x = ((p.start_unix_ns - from) / Math.max(to - from, 1)) * canvas.width;
      var h = Math.max((p.cpu / peak) * (canvas.height - 2), p.cpu ? 1 : 0);
      ctx.fillRect(x, canvas.height - h, Math.max(canvas.width / 96, 1), h);
    });
    canvas.setAttribute("aria-label", points.length ? "CPU samples: peak " + G.formatCount(peak) + " per 15 minutes" : "No activity data");
  }

  function setLinkText(cell, text) {
    cell.querySelector("a").textContent = text;
  }

  function showRow(row, overview) {
    sparkline(row.querySelector("canvas"), overview.activity || {});
    var pipeline = page.dataset.pipeline === "1";
    setLinkText(row.querySelector(".findings-count"), pipeline ? String(overview.open_findings) : "\u2014");
    setLinkText(row.querySelector(".anomalies-count"), pipeline ? String(overview.anomalies) : "\u2014");
    row.querySelector(".cost").textContent = G.money(overview.cost_usd_per_month);
    row.querySelector(".co2e").textContent = G.mass(overview.co2e_kg_per_month);
    row.dataset.cost = String(overview.cost_usd_per_month || 0);
  }

  function showUnknown(row) {
    setLinkText(row.querySelector(".findings-count"), "\u2014");
    setLinkText(row.querySelector(".anomalies-count"), "\u2014");
    row.querySelector(".cost").textContent = "\u2014";
    row.querySelector(".co2e").textContent = "\u2014";
  }

  /** Costliest open findings first; equal costs keep the list's order (by name). */
  function rankByCost(tbody) {
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.forEach(function (row, n) { row.dataset.order = String(n); });
    rows.sort(function (a, b) { return Number(b.dataset.cost || 0) - Number(a.dataset.cost || 0) || Number(a.dataset.order) - Number(b.dataset.order); });
    rows.forEach(function (row) { tbody.appendChild(row); });
  }

  var tbody = table.tBodies[0];
  Array.prototype.forEach.call(tbody.rows, function (row) {
    var cell = row.querySelector(".last-data");
    if (cell.dataset.ns) cell.textContent = G.formatLocal(Number(cell.dataset.ns));
  });
  G.getJSON(page.dataset.api).then(function (body) {
    var byName = {};
    (body.groups || []).forEach(function (group) { byName[group.name] = group.overview; });
    Array.prototype.forEach.call(tbody.rows, function (row) {
      var overview = byName[row.dataset.group];
      if (overview) showRow(row, overview);
      else showUnknown(row);
    });
    rankByCost(tbody);
  }).catch(function (error) {
    Array.prototype.forEach.call(tbody.rows, showUnknown);
    document.getElementById("groups-status").textContent = "Could not load the groups' figures: " + error.message;
  });
})();
