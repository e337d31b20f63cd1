/*
 * The findings page: the group's findings with state, cost, CO2e and evidence frames, each
 * frame opening the flame graph focused on the stacks through it. Reads the analysis
 * pipeline's persisted findings; on a server without them, the live recommendations.
 */
(function () {
  "use strict";

  var page = document.getElementById("findings-page");
  if (!page) return;
  var G = window.Greenflame;
  var api = page.dataset.api;
  var status = document.getElementById("findings-status");
  var table = document.getElementById("findings");

  /** Pipeline findings ({state, finding}) and plain recommendations as one shape. */
  function normalise(body) {
    if (Array.isArray(body.findings)) {
      return body.findings.map(function (item) {
        return { state: item.state || "", finding: item.finding || item, tickets: item.tickets || [] };
      });
    }
    return (body.recommendations || []).map(function (item) { return { state: "", finding: item, tickets: [] }; });
  }

  function evidenceLink(frame, finding) {
    var name = G.frameName(frame);
    var params = { focus: name, search: name };
    if (frame && typeof frame === "object" && frame.file) params.focus_file = String(frame.file);
    if (finding.sample_type === "wall") params.type = "wall";
    return G.el("a", { href: page.dataset.graph + "?" + new URLSearchParams(params).toString() }, name);
  }

  // One line per ticket: where it is, its state, and the last delivery failure with its retry.
  function ticketStatus(ticket) {
    var line = G.el("div", { className: "detail ticket-status", "data-ticket-state": String(ticket.state || "") });
    var name = String(ticket.channel || "ticket") + (ticket.ticket_id ? " #" + String(ticket.ticket_id) : "");
    if (ticket.url && /^https?:\/\//.test(String(ticket.url))) {
      line.appendChild(G.el("a", { href: String(ticket.url) }, name));
    } else {
      line.appendChild(document.createTextNode(name));
    }
    var status = ": " + String(ticket.state || "pending");
    if (ticket.last_action) status += ", last " + String(ticket.last_action);
    if (ticket.error) {
      status += "; delivery failed (" + String(ticket.error) + ")";
      if (ticket.failures) status += ", " + String(ticket.failures) + " attempt" + (ticket.failures === 1 ? "" : "s");
      if (ticket.next_attempt) status += ", retried after " + String(ticket.next_attempt);
    }
    line.appendChild(document.createTextNode(status));
    return line;
  }

  function row(item) {
    var f = item.finding;
    var title = G.el("td", { title: f.rule ? String(f.rule) : null }, String(f.title || f.rule || ""));
    if (f.summary) title.appendChild(G.el("div", { className: "detail" }, String(f.summary)));
    if (f.fix) title.appendChild(G.el("div", { className: "detail" }, "Fix: " + String(f.fix)));
    item.tickets.forEach(function (ticket) {
      title.appendChild(ticketStatus(ticket));
    });
    var evidence = G.el("td", { className: "frames" });
    (f.frames || []).forEach(function (frame, n) {
      if (n) evidence.appendChild(document.createTextNode(", "));
      evidence.appendChild(evidenceLink(frame, f));
    });
    var expected = typeof f.expected_share === "number" ? G.formatPercent(f.expected_share) : "\u2014";
    if (typeof f.times_expected === "number") expected += " (" + f.times_expected.toFixed(1) + "\u00d7 over)";
    return G.el("tr", { "data-state": item.state }, [
      title,
      G.el("td", { className: "state" }, item.state || "current"),
      evidence,
      G.el("td", { className: "num" }, typeof f.share === "number" ? G.formatPercent(f.share) : "\u2014"),
      G.el("td", { className: "num" }, expected),
      G.el("td", { className: "num" }, G.money(f.cost_usd_per_month)),
      G.el("td", { className: "num" }, G.mass(f.co2e_kg_per_month)),
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

  var request = page.dataset.pipeline === "1"
    ? G.getJSON(api + "/findings").then(function (body) { show(normalise(body), " from the latest analyses"); })
    : G.getJSON(api + "/recommendations").then(function (body) {
      show(normalise(body), " in all of the group's data (live analysis)");
    });
  request.catch(function (error) {
    table.hidden = true;
    status.textContent = "Could not load the findings: " + error.message;
  });
})();
