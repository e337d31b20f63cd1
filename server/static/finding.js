/*
 * A finding's detail page: what it is, where (frames and call paths), why it costs (the
 * figures and every input of the estimate with its source), the fix with the rule's before
 * and after example, its history and its tickets. Text only: names are attacker-controlled.
 */
(function () {
  "use strict";

  var page = document.getElementById("finding-page");
  if (!page) return;
  var G = window.Greenflame;
  var $ = function (id) { return document.getElementById(id); };
  var windowS = Number(page.dataset.window) || 0;
  var SOURCES = {
    profile: "from the profile",
    override: "set by you",
    measured: "measured",
    estimated: "estimated",
    "default": "default (not measured: set it for a better figure)",
  };

  function fact(list, term, value) {
    list.appendChild(G.el("dt", {}, term));
    list.appendChild(G.el("dd", {}, value));
  }

  function frameText(frame) {
    var name = G.frameName(frame);
    return frame && frame.file ? name + " (" + frame.file + ":" + frame.line + ")" : name;
  }

  function showWhere(finding, range) {
    var where = G.clear($("finding-where"));
    (finding.frames || []).forEach(function (frame) {
      var block = G.el("div", { className: "evidence" });
      block.appendChild(G.el("p", {}, [
        G.el("a", { href: G.evidenceURL(page.dataset.graph, frame, finding, range) }, frameText(frame)),
        typeof frame.share === "number" ? ": " + G.formatPercent(frame.share) + " of the time in scope (" + G.formatCount(frame.samples) + " samples)" : "",
      ]));
      (frame.stacks || []).slice(0, 3).forEach(function (stack) {
        var path = (stack.frames || []).map(G.frameName).join(" \u2192 ");
        block.appendChild(G.el("p", { className: "callpath" }, path + "  (" + G.formatCount(stack.samples) + " samples)"));
      });
      where.appendChild(block);
    });
    if (finding.call_site) where.appendChild(G.el("p", {}, "Call site: " + frameText(finding.call_site)));
  }

  function showFigures(finding) {
    var list = G.clear($("finding-figures"));
    fact(list, "Share of the time", G.formatPercent(finding.share) + " of " + (finding.sample_type === "wall" ? "wall" : "CPU") + " time in scope");
    fact(list, "Expected of a healthy program", G.formatPercent(finding.expected_share) +
      (typeof finding.times_expected === "number" ? " (this is " + finding.times_expected.toFixed(1) + "\u00d7 that)" : ""));
    fact(list, "Reported above", G.formatPercent(finding.threshold_share));
    if (typeof finding.wasted_ms_per_invocation === "number") fact(list, "Wasted per invocation", finding.wasted_ms_per_invocation.toFixed(1) + " ms");
    fact(list, "Cost", G.money(finding.cost_usd_per_month) + " per month");
    var range = finding.co2e_kg_per_month_range;
    fact(list, "CO2e", G.mass(finding.co2e_kg_per_month) + " kg per month" +
      (range ? " (between " + G.mass(range.low) + " and " + G.mass(range.high) + ")" : ""));
    var sci = finding.sci_g_per_invocation || finding.sci_g_per_request;
    if (sci && typeof sci.before === "number") {
      fact(list, "SCI", sci.before.toPrecision(3) + " g CO2e per " + (finding.sci_g_per_invocation ? "invocation" : "request") +
        (typeof sci.after === "number" ? ", " + sci.after.toPrecision(3) + " after the fix" : ""));
    }
  }

  function inputValue(value) {
    if (value && typeof value === "object" && "value" in value) return inputValue(value.value);
    if (value && typeof value === "object") return JSON.stringify(value);
    if (typeof value === "number" && !Number.isInteger(value)) return String(Number(value.toPrecision(4)));
    return value === null || value === undefined ? "\u2014" : String(value);
  }

  function showInputs(finding) {
    var inputs = finding.inputs || {};
    var tbody = G.clear($("finding-inputs").tBodies[0]);
    Object.keys(inputs).forEach(function (key) {
      if (key === "notes") return;
      var value = inputs[key];
      var source = value && typeof value === "object" && value.source ? String(value.source) : "";
      if (value && typeof value === "object" && value.sample_type) source = "from " + value.sample_type + " samples";
      tbody.appendChild(G.el("tr", {}, [
        G.el("td", { "data-label": "Input" }, key.replace(/_/g, " ")),
        G.el("td", { "data-label": "Value", className: "num" }, inputValue(value)),
        G.el("td", { "data-label": "Source" }, SOURCES[source] || source || "computed"),
      ]));
    });
    var notes = G.clear($("finding-notes"));
    (inputs.notes || []).forEach(function (note) { notes.appendChild(G.el("li", {}, String(note))); });
  }

  function showHistory(stored) {
    var list = G.clear($("finding-history"));
    fact(list, "State", String(stored.state || ""));
    fact(list, "First seen", G.timeElement(stored.first_seen_unix_ns));
    fact(list, "Last seen", G.timeElement(stored.last_seen_unix_ns));
    if (stored.resolved_unix_ns) fact(list, "Resolved", G.timeElement(stored.resolved_unix_ns));
    if (typeof stored.analyses_seen === "number") fact(list, "Analyses that reported it", String(stored.analyses_seen));
    if (stored.times_reopened) fact(list, "Times reopened", String(stored.times_reopened));
  }

  function showTickets(tickets) {
    var box = G.clear($("finding-tickets"));
    if (!tickets.length) box.appendChild(G.el("p", { className: "hint" }, "No ticket yet: connect a tracker to the group to open one."));
    tickets.forEach(function (ticket) { box.appendChild(G.ticketLine(ticket)); });
  }

  function showRule(rule, finding) {
    $("rule-description").textContent = rule.description ? "Rule " + rule.id + ": " + rule.description : "";
    $("finding-fix").textContent = String(finding.fix || rule.fix || "");
    $("example-before").textContent = String(rule.bad_example || "");
    $("example-after").textContent = String(rule.good_example || "");
    $("finding-examples").hidden = !(rule.bad_example || rule.good_example);
  }

  function show(stored) {
    var finding = stored.finding || {};
    var range = G.windowRange(stored.last_seen_unix_ns, windowS);
    document.title = String(finding.title || stored.title || "Finding") + " \u00b7 greenflame";
    $("finding-title").textContent = String(finding.title || stored.title || stored.rule || "Finding");
    $("finding-summary").textContent = String(finding.summary || "");
    $("finding-fix").textContent = String(finding.fix || "");
    $("cost-window").textContent = "Measured by the latest analysis that reported it, over the " + Math.round(windowS / 60) +
      " minutes of data up to " + G.formatLocal(stored.last_seen_unix_ns) + ".";
    showWhere(finding, range);
    showFigures(finding);
    showInputs(finding);
    showHistory(stored);
    showTickets(stored.tickets || []);
    $("finding-body").hidden = false;
    $("finding-status").textContent = "";
    G.getJSON(page.dataset.rules + encodeURIComponent(String(stored.rule || finding.rule || ""))).then(function (rule) {
      showRule(rule, finding);
    }).catch(function () { /* the catalogue has no entry: the finding's own fix stays */ });
  }

  G.getJSON(page.dataset.api + "/findings").then(function (body) {
    var wanted = page.dataset.fingerprint;
    var stored = (body.findings || []).filter(function (item) { return item.fingerprint === wanted; })[0];
    if (!stored) {
      $("finding-status").textContent = "This finding is no longer stored for the group.";
      return;
    }
    show(stored);
  }).catch(function (error) {
    $("finding-status").textContent = "Could not load the finding: " + error.message;
  });
})();
