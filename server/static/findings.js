/*
 * The findings page: the group's findings with state, cost, CO2e and evidence. Each title
 * opens the finding's detail page, each frame the flame graph of the window the finding was
 * measured in, focused on that frame. Reads the analysis pipeline's persisted findings; on a
 * server without them, the live recommendations over all of the group's data.
 */
(function () {
  "use strict";

  var page = document.getElementById("findings-page");
  if (!page) return;
  var G = window.Greenflame;
  var api = page.dataset.api;
  var windowS = Number(page.dataset.window) || 0;
  var status = document.getElementById("findings-status");
  var scope = document.getElementById("findings-scope");
  var table = document.getElementById("findings");

  /** Pipeline findings ({state, finding, last_seen_unix_ns...}) and plain recommendations as one shape. */
  function normalise(body) {
    if (Array.isArray(body.findings)) {
      return body.findings.map(function (item) {
        return { state: item.state || "", finding: item.finding || item, tickets: item.tickets || [], stored: item };
      });
    }
    return (body.recommendations || []).map(function (item) { return { state: "", finding: item, tickets: [], stored: null }; });
  }

  function describeWindow() {
    var hours = windowS / 3600;
    return hours >= 1 && hours === Math.round(hours) ? (hours === 1 ? "hour" : hours + " hours") : Math.round(windowS / 60) + " minutes";
  }

  function titleCell(item) {
    var f = item.finding;
    var cell = G.el("td", { title: f.rule ? String(f.rule) : null, "data-label": "Finding" });
    var title = String(f.title || f.rule || "");
    if (item.stored && item.stored.fingerprint) {
      cell.appendChild(G.el("a", { href: page.dataset.detail + "/" + encodeURIComponent(String(item.stored.fingerprint)), className: "finding-title" }, title));
    } else {
      cell.appendChild(document.createTextNode(title));
    }
    if (f.summary) cell.appendChild(G.el("div", { className: "detail" }, String(f.summary)));
    if (f.fix) cell.appendChild(G.el("div", { className: "detail" }, "Fix: " + String(f.fix)));
    item.tickets.forEach(function (ticket) { cell.appendChild(G.ticketLine(ticket)); });
    return cell;
  }

  function stateCell(item) {
    var cell = G.el("td", { className: "state", "data-label": "State" }, item.state || "current");
    if (item.stored && item.stored.first_seen_unix_ns) {
      cell.appendChild(G.el("div", { className: "detail" }, ["since ", G.timeElement(item.stored.first_seen_unix_ns)]));
    }
    return cell;
  }

  function row(item) {
    var f = item.finding;
    var range = item.stored ? G.windowRange(item.stored.last_seen_unix_ns, windowS) : {};
    var evidence = G.el("td", { className: "frames", "data-label": "Evidence" });
    (f.frames || []).forEach(function (frame, n) {
      if (n) evidence.appendChild(document.createTextNode(", "));
      evidence.appendChild(G.el("a", { href: G.evidenceURL(page.dataset.graph, frame, f, range) }, G.frameName(frame)));
    });
    var expected = typeof f.expected_share === "number" ? G.formatPercent(f.expected_share) : "\u2014";
    if (typeof f.times_expected === "number") expected += " (" + f.times_expected.toFixed(1) + "\u00d7 over)";
    return G.el("tr", { "data-state": item.state }, [
      titleCell(item),
      stateCell(item),
      evidence,
      G.el("td", { className: "num", "data-label": "Share" }, typeof f.share === "number" ? G.formatPercent(f.share) : "\u2014"),
      G.el("td", { className: "num", "data-label": "Expected" }, expected),
      G.el("td", { className: "num", "data-label": "$/month" }, G.money(f.cost_usd_per_month)),
      G.el("td", { className: "num", "data-label": "kg CO2e/month" }, G.mass(f.co2e_kg_per_month)),
    ]);
  }

  function show(items, source) {
    var tbody = G.clear(table.tBodies[0]);
    items.forEach(function (item) { tbody.appendChild(row(item)); });
    table.hidden = items.length === 0;
    status.textContent = items.length
      ? items.length + (items.length === 1 ? " finding" : " findings") + source + "."
      : "No findings for this group.";
  }

  function showPipelineScope(body) {
    var summary = (body.analysis && body.analysis.summary) || {};
    var until = summary.data_until_unix_ns;
    scope.textContent = "Share, cost and CO2e come from the latest background analysis, which covers the group's last " +
      describeWindow() + " of data" + (until ? " (up to " + G.formatLocal(until) + ")" : "") +
      ". The flame graph page computes them for the range you choose there, so its figures can differ. " +
      "Each frame opens the flame graph of the window the finding was measured in.";
  }

  var request = page.dataset.pipeline === "1"
    ? G.getJSON(api + "/findings").then(function (body) {
      showPipelineScope(body);
      show(normalise(body), " from the latest analyses");
    })
    : G.getJSON(api + "/recommendations").then(function (body) {
      scope.textContent = "Computed live over all of the group's data.";
      show(normalise(body), " in all of the group's data (live analysis)");
    });
  request.catch(function (error) {
    table.hidden = true;
    status.textContent = "Could not load the findings: " + error.message;
  });
})();
