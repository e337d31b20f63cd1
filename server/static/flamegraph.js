/*
 * greenflame flame graph: a canvas icicle chart (root on top) with hover tooltips,
 * click to zoom and search highlighting.
 *
 * Two parts kept apart: layout() turns the API's nested tree into flat rows of
 * positioned nodes (pure data, no DOM), and FlameGraph draws them and handles input.
 * Frame names are attacker-controlled text: they reach the page only through canvas
 * fillText and element textContent, never as HTML.
 */
(function (global) {
  "use strict";

  var ROW_HEIGHT = 18;
  var MIN_LABEL_WIDTH = 28;
  var FONT = "12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

  /* ---- data transform ---------------------------------------------------- */

  function byName(a, b) {
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  }

  /**
   * Flatten a tree {name, file, line, self, total, children} into
   * {nodes, rows, total}: nodes[i] = {name, file, line, self, total, depth, x, parent},
   * x is the offset from the left in value units; rows[d] lists node indexes of depth d
   * in increasing x. Children are ordered by name so that graphs compare well.
   */
  function layout(tree) {
    var nodes = [];
    var rows = [];
    var stack = [{ node: tree, depth: 0, x: 0, parent: -1 }];
    while (stack.length) {
      var item = stack.pop();
      var source = item.node;
      var index = nodes.length;
      nodes.push({
        name: String(source.name),
        file: source.file ? String(source.file) : "",
        line: Number(source.line) || 0,
        self: Number(source.self) || 0,
        total: Number(source.total) || 0,
        depth: item.depth,
        x: item.x,
        parent: item.parent,
      });
      (rows[item.depth] = rows[item.depth] || []).push(index);
      var children = (source.children || []).slice().sort(byName);
      var offset = item.x;
      var placed = [];
      for (var i = 0; i < children.length; i++) {
        placed.push({ node: children[i], depth: item.depth + 1, x: offset, parent: index });
        offset += Number(children[i].total) || 0;
      }
      // Pushed in reverse so that nodes of one row are visited, and listed, left to right.
      for (var j = placed.length - 1; j >= 0; j--) stack.push(placed[j]);
    }
    return { nodes: nodes, rows: rows, total: nodes.length ? nodes[0].total : 0 };
  }

  /** The node of row `depth` that covers value `value`, or -1 (binary search). */
  function nodeAt(data, depth, value) {
    var row = data.rows[depth];
    if (!row) return -1;
    var low = 0;
    var high = row.length - 1;
    while (low <= high) {
      var mid = (low + high) >> 1;
      var node = data.nodes[row[mid]];
      if (value < node.x) high = mid - 1;
      else if (value >= node.x + node.total) low = mid + 1;
      else return row[mid];
    }
    return -1;
  }

  function isAncestor(data, ancestor, index) {
    for (var i = index; i !== -1; i = data.nodes[i].parent) {
      if (i === ancestor) return true;
    }
    return false;
  }

  /* ---- colours ------------------------------------------------------------ */

  function hash(text) {
    var h = 2166136261;
    for (var i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return h >>> 0;
  }

  function frameColor(node, state) {
    if (state === "dimmed") return "hsl(0, 0%, 84%)";
    if (state === "match") return "hsl(290, 70%, 62%)";
    if (state === "ancestor") return "hsl(30, 15%, 78%)";
    var h = hash(node.name + "\u0000" + node.file);
    return "hsl(" + (8 + (h % 44)) + ", " + (70 + ((h >>> 8) % 20)) + "%, " + (56 + ((h >>> 16) % 12)) + "%)";
  }

  /* ---- drawing and interaction --------------------------------------------- */

  function FlameGraph(canvas, tooltip, options) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.unit = (options && options.unit) || "samples";
    this.data = layout({ name: "all", self: 0, total: 0, children: [] });
    this.zoom = 0;
    this.search = "";
    this.hover = -1;
    var self = this;
    canvas.addEventListener("mousemove", function (event) { self.onMove(event); });
    canvas.addEventListener("mouseleave", function () { self.setHover(-1); });
    canvas.addEventListener("click", function (event) { self.onClick(event); });
    global.addEventListener("resize", function () { self.draw(); });
  }

  FlameGraph.prototype.setTree = function (tree) {
    this.data = layout(tree);
    this.zoom = 0;
    this.hover = -1;
    this.draw();
  };

  FlameGraph.prototype.setSearch = function (text) {
    this.search = String(text || "").toLowerCase();
    this.draw();
  };

  FlameGraph.prototype.resetZoom = function () {
    this.zoom = 0;
    this.draw();
  };

  FlameGraph.prototype.matches = function (node) {
    if (!this.search) return false;
    return node.name.toLowerCase().indexOf(this.search) !== -1 || node.file.toLowerCase().indexOf(this.search) !== -1;
  };

  /** The horizontal window in value units: the zoomed node's span. */
  FlameGraph.prototype.view = function () {
    var zoomed = this.data.nodes[this.zoom];
    return { start: zoomed.x, width: Math.max(zoomed.total, 1e-9) };
  };

  FlameGraph.prototype.draw = function () {
    var canvas = this.canvas;
    var ratio = global.devicePixelRatio || 1;
    var width = canvas.clientWidth || canvas.parentNode.clientWidth || 800;
    var height = Math.max(this.data.rows.length, 1) * ROW_HEIGHT;
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    var view = this.view();
    var scale = width / view.width;
    for (var depth = 0; depth < this.data.rows.length; depth++) {
      this.drawRow(ctx, depth, view, scale, width);
    }
  };

  FlameGraph.prototype.drawRow = function (ctx, depth, view, scale, width) {
    var zoomed = this.data.nodes[this.zoom];
    var row = this.data.rows[depth];
    for (var i = 0; i < row.length; i++) {
      var index = row[i];
      var node = this.data.nodes[index];
      var ancestor = depth < zoomed.depth;
      if (ancestor && !isAncestor(this.data, index, this.zoom)) continue;
      var left = ancestor ? 0 : (node.x - view.start) * scale;
      var w = ancestor ? width : node.total * scale;
      if (left >= width || left + w <= 0 || w < 0.5) continue;
      var state = ancestor ? "ancestor" : this.search ? (this.matches(node) ? "match" : "dimmed") : "normal";
      this.drawNode(ctx, node, left, depth * ROW_HEIGHT, w, state, index === this.hover);
    }
  };

  FlameGraph.prototype.drawNode = function (ctx, node, left, top, w, state, hovered) {
    ctx.fillStyle = frameColor(node, state);
    ctx.fillRect(left, top, Math.max(w - 1, 0.5), ROW_HEIGHT - 1);
    if (hovered) {
      ctx.strokeStyle = "#222";
      ctx.strokeRect(left + 0.5, top + 0.5, Math.max(w - 2, 0.5), ROW_HEIGHT - 2);
    }
    if (w < MIN_LABEL_WIDTH) return;
    ctx.fillStyle = "#1b1b1b";
    ctx.fillText(fitText(ctx, node.name, w - 6), Math.max(left, 0) + 3, top + ROW_HEIGHT / 2);
  };

  /** The node index under a mouse event, or -1. */
  FlameGraph.prototype.hitTest = function (event) {
    var rect = this.canvas.getBoundingClientRect();
    var x = event.clientX - rect.left;
    var depth = Math.floor((event.clientY - rect.top) / ROW_HEIGHT);
    var zoomed = this.data.nodes[this.zoom];
    if (depth < 0 || depth >= this.data.rows.length) return -1;
    if (depth < zoomed.depth) {
      for (var i = this.zoom; i !== -1; i = this.data.nodes[i].parent) {
        if (this.data.nodes[i].depth === depth) return i;
      }
      return -1;
    }
    var view = this.view();
    var value = view.start + (x / (rect.width || 1)) * view.width;
    return nodeAt(this.data, depth, value);
  };

  FlameGraph.prototype.onMove = function (event) {
    var index = this.hitTest(event);
    this.setHover(index);
    if (index === -1) return;
    this.showTooltip(this.data.nodes[index], event);
  };

  FlameGraph.prototype.setHover = function (index) {
    if (index === -1) this.tooltip.hidden = true;
    if (index === this.hover) return;
    this.hover = index;
    this.canvas.style.cursor = index === -1 ? "default" : "pointer";
    this.draw();
  };

  FlameGraph.prototype.onClick = function (event) {
    var index = this.hitTest(event);
    if (index === -1) return;
    this.zoom = index;
    this.draw();
  };

  FlameGraph.prototype.showTooltip = function (node, event) {
    var total = this.data.total || 1;
    var lines = [
      ["", node.name],
      ["Location", node.file ? node.file + ":" + node.line : "unknown"],
      ["Self", formatCount(node.self) + " " + this.unit + " (" + formatPercent(node.self / total) + ")"],
      ["Total", formatCount(node.total) + " " + this.unit + " (" + formatPercent(node.total / total) + ")"],
    ];
    var tip = this.tooltip;
    while (tip.firstChild) tip.removeChild(tip.firstChild);
    for (var i = 0; i < lines.length; i++) {
      var div = document.createElement("div");
      if (lines[i][0]) {
        var label = document.createElement("span");
        label.className = "label";
        label.textContent = lines[i][0] + ": ";
        div.appendChild(label);
      } else {
        div.className = "name";
      }
      div.appendChild(document.createTextNode(lines[i][1]));
      tip.appendChild(div);
    }
    tip.hidden = false;
    var box = tip.parentNode.getBoundingClientRect();
    var left = event.clientX - box.left + 14;
    var maxLeft = box.width - tip.offsetWidth - 4;
    tip.style.left = Math.max(0, Math.min(left, maxLeft)) + "px";
    tip.style.top = event.clientY - box.top + 16 + "px";
  };

  /* ---- text helpers ----------------------------------------------------------- */

  function fitText(ctx, text, maxWidth) {
    if (ctx.measureText(text).width <= maxWidth) return text;
    var low = 0;
    var high = text.length;
    while (low < high) {
      var mid = (low + high + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + "\u2026").width <= maxWidth) low = mid;
      else high = mid - 1;
    }
    return low > 0 ? text.slice(0, low) + "\u2026" : "";
  }

  function formatCount(value) {
    return Number(value).toLocaleString("en-US");
  }

  function formatPercent(fraction) {
    if (!isFinite(fraction)) return "\u2014";
    return (fraction * 100).toFixed(fraction < 0.001 && fraction > 0 ? 3 : 1) + "%";
  }

  global.GreenflameFlamegraph = {
    layout: layout,
    nodeAt: nodeAt,
    FlameGraph: FlameGraph,
    formatPercent: formatPercent,
    formatCount: formatCount,
  };
})(window);
