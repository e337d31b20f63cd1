/*
 * Helpers shared by every page: JSON fetches, DOM building with text only, number and
 * time formatting, and the view state kept in the URL's query string.
 * Nothing here (or anywhere in the UI) inserts HTML: element text goes through textContent.
 */
(function (global) {
  "use strict";

  /** GET a JSON document; rejects with the API's one-line error message (status on .status). */
  function getJSON(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
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

  /** The function name of a finding's frame (a dict or a string). */
  function frameName(frame) {
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

  global.Greenflame = {
    getJSON: getJSON,
    el: el,
    append: append,
    clear: clear,
    formatCount: formatCount,
    formatPercent: formatPercent,
    formatSigned: formatSigned,
    formatTime: formatTime,
    isoTime: isoTime,
    readState: readState,
    stateQuery: stateQuery,
    writeState: writeState,
    parseZoom: parseZoom,
    zoomText: zoomText,
    showZoomChain: showZoomChain,
    frameName: frameName,
    money: money,
    mass: mass,
  };
})(window);
