/*
 * Helpers shared by every page: JSON fetches, DOM building with text only, number and
 * time formatting, and the view state kept in the URL's query string.
 * Nothing here (or anywhere in the UI) inserts HTML: element text goes through textContent.
 */
(function (global) {
  "use strict";

  /** Send the browser to the sign-in page when its session has ended (the API answered 401). */
  function signInAgain(response) {
    if (response.status !== 401) return;
    var here = window.location.pathname + window.location.search;
    window.location.assign("/sign-in?next=" + encodeURIComponent(here));
  }

  /** Headers for a state-changing call: JSON, and the page's CSRF token (the session cookie needs it). */
  function postHeaders() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": meta ? meta.content : "" };
  }

  /**
   * GET a JSON document; rejects with the API's one-line error message (status on .status).
   * An answer the server gave from its last one (a busy server: an Age header) has its age in
   * seconds as .answer_age_s.
   */
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
      signInAgain(response);
      return response.json().catch(function () { return null; }).then(function (body) {
        var age = response.headers.get("Age");
        if (response.ok && body && age !== null) body.answer_age_s = Number(age);
        if (response.ok && body) return body;
        var message = body && body.error && body.error.message ? body.error.message : "HTTP " + response.status;
        var error = new Error(message);
        error.status = response.status;
        throw error;
      });
    });
  }

  /** A new element with attributes (set as properties or attributes, never HTML) and text or children. */
  function el(tag, attrs, content) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "className" || key === "textContent" || key === "title" || key === "href" || key === "type") node[key] = value;
      else node.setAttribute(key, String(value));
    });
    append(node, content);
    return node;
  }

  function append(node, content) {
    if (content === undefined || content === null) return node;
    if (Array.isArray(content)) {
      content.forEach(function (child) { append(node, child); });
    } else if (typeof content === "object" && content.nodeType) {
      node.appendChild(content);
    } else {
      node.appendChild(document.createTextNode(String(content)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function formatCount(value) {
    return Number(value).toLocaleString("en-US");
  }

  function formatPercent(fraction) {
    if (!isFinite(fraction)) return "\u2014";
    var digits = Math.abs(fraction) < 0.001 && fraction !== 0 ? 3 : Math.abs(fraction) < 0.1 ? 2 : 1;
    return (fraction * 100).toFixed(digits) + "%";
  }

  /** A change of share as signed percentage points: "+3.20 pp". */
  function formatSigned(fraction) {
    if (!isFinite(fraction)) return "\u2014";
    var points = Math.abs(fraction * 100);
    var digits = points < 0.1 ? 3 : points < 10 ? 2 : 1;
    return (fraction > 0 ? "+" : fraction < 0 ? "\u2212" : "\u00b1") + points.toFixed(digits) + " pp";
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  /** Unix nanoseconds (number) as "YYYY-MM-DD HH:MM UTC". */
  function formatTime(unixNs) {
    if (!unixNs) return "\u2014";
    var d = new Date(unixNs / 1e6);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  }

  /** A moment (Unix nanoseconds, or an RFC 3339 string) in the reader's time zone: "4 Dec 2026, 14:05 CET". */
  function formatLocal(moment) {
    var date = typeof moment === "number" ? new Date(moment / 1e6) : new Date(String(moment || ""));
    if (!moment || !isFinite(date.getTime())) return "\u2014";
    return date.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
  }

  /** A <time> element showing `moment` in local time, with the UTC form as its tooltip. */
  function timeElement(moment) {
    var date = typeof moment === "number" ? new Date(moment / 1e6) : new Date(String(moment || ""));
    if (!moment || !isFinite(date.getTime())) return el("span", {}, "\u2014");
    var iso = date.toISOString().replace(/\.\d{3}Z$/, "Z");
    return el("time", { datetime: iso, title: iso.replace("T", " ").replace("Z", " UTC") }, formatLocal(moment));
  }

  var UNIT_SECONDS = { nanoseconds: 1e-9, microseconds: 1e-6, milliseconds: 1e-3, seconds: 1 };

  /** The time a value stands for, in seconds: samples times the sampling period; null when unknown. */
  function valueSeconds(value, unit, periodNs) {
    if (unit === "samples") return periodNs ? (value * periodNs) / 1e9 : null;
    return Object.prototype.hasOwnProperty.call(UNIT_SECONDS, unit) ? value * UNIT_SECONDS[unit] : null;
  }

  /** Seconds in a readable unit: "850 µs", "12.5 ms", "3.42 s", "2.5 min", "1.2 h". */
  function formatDuration(seconds) {
    if (seconds === null || !isFinite(seconds)) return "\u2014";
    var size = Math.abs(seconds);
    if (size === 0) return "0 s";
    if (size < 1e-3) return (seconds * 1e6).toFixed(0) + " \u00b5s";
    if (size < 1) return (seconds * 1e3).toFixed(size < 0.01 ? 2 : size < 0.1 ? 1 : 0) + " ms";
    if (size < 60) return seconds.toFixed(size < 10 ? 2 : 1) + " s";
    if (size < 3600) return (seconds / 60).toFixed(1) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  /** Unix nanoseconds as the API's RFC 3339 form, to the second. */
  function isoTime(unixNs) {
    return new Date(Math.round(unixNs / 1e6)).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  /** The page's view state from the query string: `defaults` names the keys (arrays repeat). */
  function readState(defaults) {
    var params = new URLSearchParams(global.location.search);
    var state = {};
    Object.keys(defaults).forEach(function (key) {
      if (Array.isArray(defaults[key])) state[key] = params.getAll(key);
      else state[key] = params.has(key) ? params.get(key) : defaults[key];
    });
    return state;
  }

  /** A query string of `state` leaving out values equal to `defaults` (so URLs stay short). */
  function stateQuery(state, defaults) {
    var params = new URLSearchParams();
    Object.keys(state).forEach(function (key) {
      var value = state[key];
      if (Array.isArray(value)) value.forEach(function (item) { params.append(key, item); });
      else if (value !== null && value !== undefined && value !== "" && value !== (defaults || {})[key]) params.set(key, value);
    });
    var text = params.toString();
    return text ? "?" + text : "";
  }

  /** Put `state` in the address bar without reloading (replace: no history entry per keystroke). */
  function writeState(state, defaults, push) {
    var url = global.location.pathname + stateQuery(state, defaults);
    if (url === global.location.pathname + global.location.search) return;
    if (push) global.history.pushState(null, "", url);
    else global.history.replaceState(null, "", url);
  }

  /** The zoom kept in the URL's `zoom` value (a JSON list of frame names); [] when absent or malformed. */
  function parseZoom(text) {
    if (!text) return [];
    try {
      var path = JSON.parse(text);
      return Array.isArray(path) ? path.map(String) : [];
    } catch (error) {
      return [];
    }
  }

  /** The URL's `zoom` value for a flame graph's zoom path ("" at the root, so it leaves the URL). */
  function zoomText(path) {
    return path.length ? JSON.stringify(path) : "";
  }

  /** Fill `nav` with the frames from the root to `graph`'s zoomed frame; each ancestor is a button zooming to it. */
  function showZoomChain(nav, graph) {
    clear(nav);
    var chain = [];
    for (var i = graph.zoom; i !== -1; i = graph.data.parent[i]) chain.unshift(i);
    chain.forEach(function (index, n) {
      if (n) nav.appendChild(document.createTextNode(" \u203a "));
      var name = graph.data.names[index];
      if (index === graph.zoom) {
        nav.appendChild(el("span", { "aria-current": "location" }, name));
      } else {
        var button = el("button", { type: "button", className: "crumb" }, name);
        button.addEventListener("click", function () { graph.zoomTo(index); });
        nav.appendChild(button);
      }
    });
  }

  /**
   * A label filter as the API's `label` value: "key=value", with "%" and "=" in the key
   * percent-encoded so a key holding "=" stays one key.
   */
  function labelParam(key, value) {
    return String(key).replace(/%/g, "%25").replace(/=/g, "%3D") + "=" + String(value);
  }

  /** The function name of a finding's frame (a dict or a string). */
  function frameName(frame) {
    if (frame === null || frame === undefined) return "";
    if (typeof frame !== "object") return String(frame);
    return String(frame["function"] || frame.name || "");
  }

  /** One ticket's line: where it is (a link only to http(s) URLs), its state, and its last delivery failure. */
  function ticketLine(ticket) {
    var line = el("div", { className: "detail ticket-status", "data-ticket-state": String(ticket.state || "") });
    var name = String(ticket.channel || "ticket") + (ticket.ticket_id ? " #" + String(ticket.ticket_id) : "");
    if (ticket.url && /^https?:\/\//.test(String(ticket.url))) {
      line.appendChild(el("a", { href: String(ticket.url) }, name));
    } else {
      line.appendChild(document.createTextNode(name));
    }
    var status = ": " + String(ticket.state || "pending");
    if (ticket.last_action) status += ", last " + String(ticket.last_action);
    if (ticket.error) {
      status += "; delivery failed (" + String(ticket.error) + ")";
      if (ticket.failures) status += ", " + String(ticket.failures) + " attempt" + (ticket.failures === 1 ? "" : "s");
      if (ticket.next_attempt) status += ", retried after " + formatLocal(ticket.next_attempt);
    }
    line.appendChild(document.createTextNode(status));
    return line;
  }

  /**
   * The flame graph URL (`graphPath`) over the window a finding was measured in, focused on
   * one of its frames: the range, the sample type and the frame's file are kept.
   */
  function evidenceURL(graphPath, frame, finding, range) {
    var name = frameName(frame);
    var params = { from: range.from || "", to: range.to || "", focus: name, search: name };
    if (frame && typeof frame === "object" && frame.file) params.focus_file = String(frame.file);
    if (finding.sample_type === "wall") params.type = "wall";
    return graphPath + stateQuery(params, {});
  }

  /** The analysis window that ends at `endNs` (Unix ns) and lasts `windowS` seconds, as URL bounds. */
  function windowRange(endNs, windowS) {
    if (!endNs || !windowS) return {};
    var end = Math.ceil(endNs / 1e9);
    return { from: String(end - windowS), to: String(end) };
  }

  function money(value) {
    return typeof value === "number" ? "$" + value.toFixed(2) : "\u2014";
  }

  function mass(value) {
    return typeof value === "number" ? value.toFixed(3) : "\u2014";
  }

  global.Greenflame = {
    getJSON: getJSON,
    postHeaders: postHeaders,
    signInAgain: signInAgain,
    el: el,
    append: append,
    clear: clear,
    formatCount: formatCount,
    formatPercent: formatPercent,
    formatSigned: formatSigned,
    formatTime: formatTime,
    isoTime: isoTime,
    formatLocal: formatLocal,
    timeElement: timeElement,
    valueSeconds: valueSeconds,
    formatDuration: formatDuration,
    labelParam: labelParam,
    readState: readState,
    stateQuery: stateQuery,
    writeState: writeState,
    parseZoom: parseZoom,
    zoomText: zoomText,
    showZoomChain: showZoomChain,
    frameName: frameName,
    ticketLine: ticketLine,
    evidenceURL: evidenceURL,
    windowRange: windowRange,
    money: money,
    mass: mass,
  };
})(window);
