/*
 * greenflame flame graph: a canvas icicle chart (root on top, or at the bottom when
 * inverted) with tooltips, click to zoom, search with the matches' total share and
 * next/previous match, keyboard navigation, "color my code", diff colouring, left-heavy
 * ordering, marks on the frames findings name, a busy state, and a minimap.
 *
 * layout() turns the API's nested tree into flat typed arrays in breadth-first order (a
 * node's children are contiguous and come after it), so drawing and hit tests never
 * recurse over the whole tree: draw() walks down from the zoomed node and skips any node
 * narrower than a fraction of a pixel together with its subtree, so only what is visible
 * is drawn. Frame names are attacker-controlled text: they reach the page only through
 * canvas fillText and element textContent, never as HTML.
 */
(function (global) {
  "use strict";

  var ROW_HEIGHT = 18;
  var MIN_LABEL_WIDTH = 28;
  var MIN_DRAW_WIDTH = 0.35;
  var FONT = "12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
  var KINDS = { user: 0, library: 1, stdlib: 2 };
  var KIND_NAMES = ["your code", "library", "standard library", "unknown"];

  /* ---- data transform ---------------------------------------------------- */

  function byName(a, b) {
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  }

  function sortedByName(children) {
    for (var i = 1; i < children.length; i++) {
      if (children[i - 1].name > children[i].name) return children.slice().sort(byName);
    }
    return children;
  }

  /** Largest first (speedscope's "left heavy"): the costliest path runs down the left edge. */
  function byWeight(a, b) {
    return (Number(b.total) || 0) - (Number(a.total) || 0) || byName(a, b);
  }

  function countNodes(tree) {
    var count = 0;
    var stack = [tree];
    while (stack.length) {
      var node = stack.pop();
      count++;
      var children = node.children || [];
      for (var i = 0; i < children.length; i++) stack.push(children[i]);
    }
    return count;
  }

  /**
   * Flatten a tree {name, file, line, self, total, kind, children[, base_self, base_total]}
   * into typed arrays. Widths are the node's total, or in a diff its share of the base plus
   * its share of the target, so frames that appeared or vanished are both visible.
   * Siblings are ordered by name, or largest first when `order` is "heavy".
   */
  function layout(tree, order) {
    var n = countNodes(tree);
    var diff = tree.base_total !== undefined;
    var data = {
      n: n,
      diff: diff,
      names: new Array(n),
      files: new Array(n),
      lines: new Int32Array(n),
      kinds: new Uint8Array(n),
      pruned: new Int32Array(n),
      parent: new Int32Array(n),
      depth: new Int32Array(n),
      childStart: new Int32Array(n),
      childCount: new Int32Array(n),
      self: new Float64Array(n),
      total: new Float64Array(n),
      baseSelf: diff ? new Float64Array(n) : null,
      baseTotal: diff ? new Float64Array(n) : null,
      x: new Float64Array(n),
      w: new Float64Array(n),
      maxDepth: 0,
    };
    var baseRoot = diff ? Number(tree.base_total) || 0 : 0;
    var targetRoot = Number(tree.total) || 0;
    data.baseRoot = baseRoot;
    data.targetRoot = targetRoot;
    data.sampleType = tree.sample_type;
    var sources = [tree];
    data.parent[0] = -1;
    for (var i = 0; i < sources.length; i++) {
      var source = sources[i];
      data.names[i] = String(source.name);
      data.files[i] = source.file ? String(source.file) : "";
      data.lines[i] = Number(source.line) || 0;
      data.kinds[i] = source.kind in KINDS ? KINDS[source.kind] : 3;
      data.pruned[i] = Number(source.pruned_nodes) || 0;
      data.self[i] = Number(source.self) || 0;
      data.total[i] = Number(source.total) || 0;
      if (diff) {
        data.baseSelf[i] = Number(source.base_self) || 0;
        data.baseTotal[i] = Number(source.base_total) || 0;
        data.w[i] = (baseRoot ? data.baseTotal[i] / baseRoot : 0) + (targetRoot ? data.total[i] / targetRoot : 0);
      } else {
        data.w[i] = data.total[i];
      }
      var children = source.children || [];
      if (children.length > 1) children = order === "heavy" ? children.slice().sort(byWeight) : sortedByName(children);
      data.childStart[i] = sources.length;
      data.childCount[i] = children.length;
      for (var j = 0; j < children.length; j++) {
        data.parent[sources.length] = i;
        data.depth[sources.length] = data.depth[i] + 1;
        sources.push(children[j]);
      }
      if (data.depth[i] > data.maxDepth) data.maxDepth = data.depth[i];
    }
    // x offsets: parents come before children in breadth-first order.
    for (var k = 0; k < n; k++) {
      var offset = data.x[k];
      var end = data.childStart[k] + data.childCount[k];
      for (var c = data.childStart[k]; c < end; c++) {
        data.x[c] = offset;
        offset += data.w[c];
      }
    }
    return data;
  }

  /**
   * The API-shaped tree back from the flat arrays (for a new sibling order), so the page need
   * not keep the parsed JSON alive beside the arrays.
   */
  function treeOf(data) {
    var kinds = Object.keys(KINDS);
    var nodes = new Array(data.n);
    for (var i = data.n - 1; i >= 0; i--) {
      var node = {
        name: data.names[i], file: data.files[i], line: data.lines[i], self: data.self[i], total: data.total[i],
        kind: kinds[data.kinds[i]], pruned_nodes: data.pruned[i] || undefined, children: [],
      };
      if (data.diff) { node.base_self = data.baseSelf[i]; node.base_total = data.baseTotal[i]; }
      var end = data.childStart[i] + data.childCount[i];
      for (var c = data.childStart[i]; c < end; c++) node.children.push(nodes[c]);
      nodes[i] = node;
    }
    return nodes[0];
  }

  /** The child of `index` covering `value` (binary search over its contiguous children), or -1. */
  function childAt(data, index, value) {
    var low = data.childStart[index];
    var high = low + data.childCount[index] - 1;
    while (low <= high) {
      var mid = (low + high) >> 1;
      if (value < data.x[mid]) high = mid - 1;
      else if (value >= data.x[mid] + data.w[mid]) low = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** The path of names from the root's child down to `index` (for URLs). */
  function pathOf(data, index) {
    var names = [];
    for (var i = index; i > 0; i = data.parent[i]) names.unshift(data.names[i]);
    return names;
  }

  /** The node at a path of names (the widest one when names repeat), or 0 (the root). */
  function findPath(data, names) {
    var index = 0;
    for (var p = 0; p < names.length; p++) {
      var best = -1;
      var end = data.childStart[index] + data.childCount[index];
      for (var c = data.childStart[index]; c < end; c++) {
        if (data.names[c] === names[p] && (best === -1 || data.w[c] > data.w[best])) best = c;
      }
      if (best === -1) break;
      index = best;
    }
    return index;
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

  var KIND_COLORS = ["hsl(135, 50%, 62%)", "hsl(205, 65%, 72%)", "hsl(40, 12%, 74%)", "hsl(0, 0%, 80%)"];
  var FINDING_MARK = "hsl(350, 85%, 42%)";
  var DIMMED = "hsl(0, 0%, 88%)";
  var MATCH = "hsl(290, 70%, 66%)";
  var ANCESTOR = "hsl(30, 15%, 80%)";
  var OTHER = "hsl(0, 0%, 76%)";

  function diffColor(change, scale) {
    var intensity = Math.min(1, Math.abs(change) / (scale || 1));
    if (intensity < 0.02) return "hsl(0, 0%, 90%)";
    var lightness = Math.round(90 - 32 * intensity);
    return change > 0 ? "hsl(2, 80%, " + lightness + "%)" : "hsl(214, 80%, " + lightness + "%)";
  }

  /* ---- the widget ------------------------------------------------------------ */

  /**
   * options: unit, inverted (root at the bottom), color ("name" | "kind"), order ("name" |
   * "heavy"), onZoom(index), onSelect(index), onSandwich(index) (key S or right-click),
   * onDraw() (after each redraw), status (element announcing the keyboard selection),
   * scroller (the scroll area around the canvas, kept on the selected frame).
   */
  function FlameGraph(canvas, tooltip, options) {
    options = options || {};
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.unit = options.unit || "samples";
    this.periodNs = 0;
    this.inverted = !!options.inverted;
    this.color = options.color || "name";
    this.order = options.order || "name";
    this.onZoom = options.onZoom || null;
    this.onSelect = options.onSelect || null;
    this.onSandwich = options.onSandwich || null;
    this.onDraw = options.onDraw || null;
    this.status = options.status || null;
    this.scroller = options.scroller || null;
    this.busy = false;
    this.marks = [];
    this.marked = null;
    this.matchList = [];
    this.matchAt = -1;
    this.data = layout({ name: "all", self: 0, total: 0, children: [] });
    this.nameColors = [];
    this.zoom = 0;
    this.selected = -1;
    this.hover = -1;
    this.search = "";
    this.matches = null;
    this.matchShare = 0;
    this.diffScale = 0.01;
    this.timings = { layout: 0, draw: 0, drawn: 0 };
    if (!canvas.hasAttribute("tabindex")) canvas.setAttribute("tabindex", "0");
    canvas.setAttribute("role", "application");
    var self = this;
    canvas.addEventListener("mousemove", function (event) { self.onMove(event); });
    canvas.addEventListener("mouseleave", function () { self.setHover(-1); self.tooltip.hidden = true; });
    canvas.addEventListener("click", function (event) { self.onClick(event); });
    canvas.addEventListener("contextmenu", function (event) { self.onContextMenu(event); });
    canvas.addEventListener("keydown", function (event) { self.onKey(event); });
    canvas.addEventListener("blur", function () { if (self.hover === -1) self.tooltip.hidden = true; });
    if (global.ResizeObserver) {
      var lastWidth = 0;
      new global.ResizeObserver(function () {
        var width = canvas.clientWidth;
        if (width && width !== lastWidth) { lastWidth = width; self.draw(); }
      }).observe(canvas);
    }
  }

  FlameGraph.prototype.setTree = function (tree, zoomPath) {
    var started = performance.now();
    this.data = layout(tree, this.order);
    this.nameColors = new Array(this.data.n);
    this.timings.layout = performance.now() - started;
    this.zoom = zoomPath && zoomPath.length ? findPath(this.data, zoomPath) : 0;
    this.selected = -1;
    this.hover = -1;
    this.diffScale = this.data.diff ? this.computeDiffScale() : 0.01;
    this.computeMatches();
    this.computeMarks();
    this.draw();
  };

  /** Re-lay out the same tree with siblings by name or largest first, keeping the zoom. */
  FlameGraph.prototype.setOrder = function (order) {
    this.order = order === "heavy" ? "heavy" : "name";
    var tree = treeOf(this.data);
    tree.sample_type = this.data.sampleType;
    tree.unit = this.unit;
    this.setTree(tree, this.zoomPath());
  };

  /**
   * Mark the frames that findings name: `marks` is a list of {name, file, title}; a frame
   * matches on its function name and, when the mark has one, its file.
   */
  FlameGraph.prototype.setMarks = function (marks) {
    var had = this.marks.length;
    this.marks = marks || [];
    if (!had && !this.marks.length) return;
    this.computeMarks();
    this.draw();
  };

  FlameGraph.prototype.computeMarks = function () {
    var data = this.data;
    this.marked = null;
    if (!this.marks.length) return;
    var byName = {};
    this.marks.forEach(function (mark) { (byName[mark.name] = byName[mark.name] || []).push(mark); });
    var flags = new Int32Array(data.n).fill(-1);
    var any = false;
    for (var i = 1; i < data.n; i++) {
      var candidates = byName[data.names[i]];
      if (!candidates) continue;
      for (var m = 0; m < candidates.length; m++) {
        if (!candidates[m].file || candidates[m].file === data.files[i]) {
          flags[i] = this.marks.indexOf(candidates[m]);
          any = true;
          break;
        }
      }
    }
    this.marked = any ? flags : null;
  };

  /** While loading: the graph is dimmed by the page and ignores the mouse and keyboard. */
  FlameGraph.prototype.setBusy = function (busy) {
    this.busy = !!busy;
    if (this.busy) { this.tooltip.hidden = true; this.hover = -1; }
  };

  FlameGraph.prototype.setSearch = function (text) {
    this.search = String(text || "").toLowerCase();
    this.computeMatches();
    this.draw();
    return this.matchShare;
  };

  FlameGraph.prototype.setColor = function (mode) {
    this.color = mode;
    this.draw();
  };

  FlameGraph.prototype.zoomTo = function (index) {
    this.zoom = Math.max(0, Math.min(index, this.data.n - 1));
    this.draw();
    if (this.onZoom) this.onZoom(this.zoom);
  };

  FlameGraph.prototype.resetZoom = function () { this.zoomTo(0); };

  FlameGraph.prototype.zoomPath = function () { return pathOf(this.data, this.zoom); };

  /** Flags matching nodes; the share counts each matching subtree once (nested matches not twice). */
  FlameGraph.prototype.computeMatches = function () {
    var data = this.data;
    this.matches = null;
    this.matchShare = 0;
    this.matchList = [];
    this.matchAt = -1;
    if (!this.search) return;
    var flags = new Uint8Array(data.n);
    var covered = new Uint8Array(data.n);
    var sum = 0;
    for (var i = 0; i < data.n; i++) {
      var hit = data.names[i].toLowerCase().indexOf(this.search) !== -1 || data.files[i].toLowerCase().indexOf(this.search) !== -1;
      var above = i > 0 && covered[data.parent[i]];
      flags[i] = hit ? 1 : 0;
      covered[i] = hit || above ? 1 : 0;
      if (hit && !above) sum += data.total[i];
      if (hit && data.w[i] > 0) this.matchList.push(i);
    }
    // Next/previous visit matches left to right, row by row from the root.
    this.matchList.sort(function (a, b) { return data.depth[a] - data.depth[b] || data.x[a] - data.x[b]; });
    this.matches = flags;
    this.matchShare = data.total[0] ? sum / data.total[0] : 0;
  };

  /** Select the next (+1) or previous (-1) match, zooming out if it is outside the zoom; its index or -1. */
  FlameGraph.prototype.stepMatch = function (direction) {
    var count = this.matchList.length;
    if (!count) return -1;
    this.matchAt = this.matchAt === -1 ? (direction > 0 ? 0 : count - 1) : (this.matchAt + direction + count) % count;
    var index = this.matchList[this.matchAt];
    if (!this.isVisible(index)) this.zoomTo(0);
    this.select(index, true);
    return index;
  };

  FlameGraph.prototype.computeDiffScale = function () {
    var data = this.data;
    var biggest = 0;
    for (var i = 1; i < data.n; i++) {
      var change = Math.abs(this.change(i));
      if (change > biggest) biggest = change;
    }
    return Math.max(biggest, 0.01);
  };

  /** In a diff: the node's share of the target minus its share of the base. */
  FlameGraph.prototype.change = function (index) {
    var data = this.data;
    var after = data.targetRoot ? data.total[index] / data.targetRoot : 0;
    var before = data.baseRoot ? data.baseTotal[index] / data.baseRoot : 0;
    return after - before;
  };

  FlameGraph.prototype.rowTop = function (depth) {
    var rows = this.data.maxDepth + 1;
    return (this.inverted ? rows - 1 - depth : depth) * ROW_HEIGHT;
  };

  /**
   * Canvas colours that follow the page's theme (dark mode). Reading styles costs a style
   * recalculation, so they are read at the first draw and again only when the theme changes.
   */
  FlameGraph.prototype.themeColors = function () {
    if (this.theme) return this.theme;
    var style = global.getComputedStyle ? global.getComputedStyle(this.canvas) : null;
    var fg = style ? style.getPropertyValue("--fg").trim() : "";
    this.theme = { outline: fg || "#111" };
    var self = this;
    if (global.matchMedia && !this.watchingTheme) {
      this.watchingTheme = true;
      global.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
        self.theme = null;
        self.draw();
      });
    }
    return this.theme;
  };

  FlameGraph.prototype.fillFor = function (index, ancestor) {
    var data = this.data;
    if (ancestor) return ANCESTOR;
    if (this.matches) return this.matches[index] ? MATCH : DIMMED;
    if (data.pruned[index]) return OTHER;
    if (data.diff) return diffColor(this.change(index), this.diffScale);
    if (this.color === "kind") return KIND_COLORS[data.kinds[index]];
    // Hashing a name is the costliest part of a redraw: each node's colour is computed once.
    var cached = this.nameColors[index];
    if (cached) return cached;
    var h = hash(data.names[index] + "\u0000" + data.files[index]);
    cached = "hsl(" + (8 + (h % 44)) + ", " + (70 + ((h >>> 8) % 20)) + "%, " + (60 + ((h >>> 16) % 12)) + "%)";
    this.nameColors[index] = cached;
    return cached;
  };

  FlameGraph.prototype.draw = function () {
    var started = performance.now();
    var canvas = this.canvas;
    var data = this.data;
    var ratio = global.devicePixelRatio || 1;
    var width = canvas.clientWidth || (canvas.parentNode && canvas.parentNode.clientWidth) || 800;
    var height = (data.maxDepth + 1) * ROW_HEIGHT;
    canvas.style.height = height + "px";
    var pixelWidth = Math.round(width * ratio);
    var pixelHeight = Math.round(height * ratio);
    if (canvas.width !== pixelWidth) canvas.width = pixelWidth;
    if (canvas.height !== pixelHeight) canvas.height = pixelHeight;
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    this.themeColors();
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    this.charWidth = ctx.measureText("MMMMMMMMMM").width / 10 || 7;
    var drawn = 0;
    // The zoomed node's ancestors: full-width bars.
    for (var a = data.parent[this.zoom]; a !== -1; a = data.parent[a]) {
      this.drawNode(ctx, a, 0, width, true);
      drawn++;
    }
    var self = this;
    this.eachVisible(this.zoom, width, MIN_DRAW_WIDTH, function (index, left, w) {
      self.drawNode(ctx, index, left, w, false);
      drawn++;
    });
    this.timings.draw = performance.now() - started;
    this.timings.drawn = drawn;
    if (this.onDraw) this.onDraw();
  };

  /**
   * The box of frame `top` spread over `width` px and of every frame under it at least
   * `minWidth` px wide: visit(index, left, w). They all lie inside `top`'s width.
   */
  FlameGraph.prototype.eachVisible = function (top, width, minWidth, visit) {
    var data = this.data;
    var start = data.x[top];
    var scale = width / Math.max(data.w[top], 1e-12);
    var pending = [top];
    while (pending.length) {
      var index = pending.pop();
      var w = data.w[index] * scale;
      if (w < minWidth) continue; // and so is every descendant: they are narrower
      visit(index, (data.x[index] - start) * scale, w);
      var end = data.childStart[index] + data.childCount[index];
      for (var c = data.childStart[index]; c < end; c++) pending.push(c);
    }
  };

  FlameGraph.prototype.drawNode = function (ctx, index, left, w, ancestor) {
    var top = this.rowTop(this.data.depth[index]);
    ctx.fillStyle = this.fillFor(index, ancestor);
    ctx.fillRect(left, top, Math.max(w - 1, 0.5), ROW_HEIGHT - 1);
    if (this.marked && this.marked[index] !== -1) {
      // A frame a finding names: a thick red edge on the left and a line along the bottom.
      ctx.fillStyle = FINDING_MARK;
      ctx.fillRect(left, top, Math.min(4, Math.max(w - 1, 0.5)), ROW_HEIGHT - 1);
      ctx.fillRect(left, top + ROW_HEIGHT - 3, Math.max(w - 1, 0.5), 2);
    }
    if (index === this.hover || index === this.selected) {
      ctx.strokeStyle = this.theme ? this.theme.outline : "#111";
      ctx.lineWidth = index === this.selected ? 2 : 1;
      ctx.strokeRect(left + 1, top + 1, Math.max(w - 3, 0.5), ROW_HEIGHT - 3);
    }
    if (w < MIN_LABEL_WIDTH) return;
    var name = this.data.names[index];
    var room = Math.floor((w - 6) / this.charWidth);
    if (room < 2) return;
    var label = name.length > room ? name.slice(0, room - 1) + "\u2026" : name;
    ctx.fillStyle = "#111";  // frames are light in both themes
    ctx.fillText(label, Math.max(left, 0) + (this.marked && this.marked[index] !== -1 ? 6 : 3), top + ROW_HEIGHT / 2);
  };

  /** The node index at canvas coordinates, or -1. */
  FlameGraph.prototype.nodeAtPoint = function (x, y) {
    var data = this.data;
    var rows = data.maxDepth + 1;
    var row = Math.floor(y / ROW_HEIGHT);
    if (row < 0 || row >= rows) return -1;
    var depth = this.inverted ? rows - 1 - row : row;
    var zoomDepth = data.depth[this.zoom];
    if (depth < zoomDepth) {
      for (var a = this.zoom; a !== -1; a = data.parent[a]) if (data.depth[a] === depth) return a;
      return -1;
    }
    var width = this.canvas.clientWidth || 1;
    var value = data.x[this.zoom] + (x / width) * data.w[this.zoom];
    if (value < data.x[this.zoom] || value >= data.x[this.zoom] + data.w[this.zoom]) return -1;
    var index = this.zoom;
    while (data.depth[index] < depth) {
      index = childAt(data, index, value);
      if (index === -1) return -1;
    }
    return index;
  };

  FlameGraph.prototype.eventPoint = function (event) {
    var rect = this.canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  };

  FlameGraph.prototype.onMove = function (event) {
    if (this.busy) return;
    var point = this.eventPoint(event);
    var index = this.nodeAtPoint(point.x, point.y);
    this.setHover(index);
    if (index === -1) { this.tooltip.hidden = true; return; }
    this.showTooltip(index, point.x, point.y);
  };

  FlameGraph.prototype.setHover = function (index) {
    if (index === this.hover) return;
    this.hover = index;
    this.canvas.style.cursor = index === -1 ? "default" : "pointer";
    this.draw();
  };

  FlameGraph.prototype.onClick = function (event) {
    if (this.busy) return;
    var point = this.eventPoint(event);
    var index = this.nodeAtPoint(point.x, point.y);
    if (index === -1) return;
    this.select(index, false);
    this.zoomTo(index);
  };

  /** Right-click a frame: its sandwich view (when the page offers one). */
  FlameGraph.prototype.onContextMenu = function (event) {
    if (this.busy || !this.onSandwich) return;
    var point = this.eventPoint(event);
    var index = this.nodeAtPoint(point.x, point.y);
    if (index <= 0 || this.data.pruned[index]) return;
    event.preventDefault();
    this.select(index, false);
    this.onSandwich(index);
  };

  FlameGraph.prototype.select = function (index, showTip) {
    this.selected = index;
    this.draw();
    // Keyboard and search selections may be out of view; a clicked frame is in view already
    // (and reading the scroll area's size would force a layout on every click).
    if (index !== -1 && showTip) this.scrollToRow(index);
    if (index !== -1 && this.status) this.status.textContent = this.describe(index);
    if (index !== -1 && showTip) {
      var box = this.nodeBox(index);
      this.showTooltip(index, box.left + Math.min(box.width, 40), box.top + ROW_HEIGHT);
    }
    if (this.onSelect) this.onSelect(index);
  };

  /** Scroll the surrounding scroll area so the frame's row is in view. */
  FlameGraph.prototype.scrollToRow = function (index) {
    var scroller = this.scroller;
    if (!scroller) return;
    var top = this.rowTop(this.data.depth[index]);
    if (top < scroller.scrollTop) scroller.scrollTop = Math.max(0, top - ROW_HEIGHT);
    else if (top + ROW_HEIGHT > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = top + 2 * ROW_HEIGHT - scroller.clientHeight;
  };

  /** Where a node is drawn now (for the keyboard tooltip). */
  FlameGraph.prototype.nodeBox = function (index) {
    var data = this.data;
    var width = this.canvas.clientWidth || 1;
    var top = this.rowTop(data.depth[index]);
    if (data.depth[index] < data.depth[this.zoom]) return { left: 0, width: width, top: top };
    var scale = width / Math.max(data.w[this.zoom], 1e-12);
    return { left: Math.max(0, (data.x[index] - data.x[this.zoom]) * scale), width: data.w[index] * scale, top: top };
  };

  /** Keyboard: arrows move the selection, Enter zooms in, Escape zooms out, Home resets. */
  FlameGraph.prototype.onKey = function (event) {
    if (this.busy) return;
    var data = this.data;
    var current = this.selected === -1 ? this.zoom : this.selected;
    var next = -1;
    var towardRoot = this.inverted ? "ArrowDown" : "ArrowUp";
    var towardLeaves = this.inverted ? "ArrowUp" : "ArrowDown";
    if (event.key === towardRoot) next = data.parent[current];
    else if (event.key === towardLeaves) next = this.widestChild(current);
    else if (event.key === "ArrowLeft" || event.key === "ArrowRight") next = this.neighbour(current, event.key === "ArrowLeft" ? -1 : 1);
    else if (event.key === "Enter" || event.key === " ") {
      this.zoomTo(current);
      event.preventDefault();
      return;
    } else if (event.key === "Escape" || event.key === "Backspace") {
      if (this.zoom !== 0) this.zoomTo(data.parent[this.zoom]);
      event.preventDefault();
      return;
    } else if (event.key === "Home") {
      this.resetZoom();
      next = 0;
    } else if ((event.key === "s" || event.key === "S") && this.onSandwich && current > 0 && !data.pruned[current]) {
      event.preventDefault();
      this.onSandwich(current);
      return;
    } else {
      return;
    }
    event.preventDefault();
    if (next !== -1 && next !== undefined) this.select(next, true);
  };

  FlameGraph.prototype.widestChild = function (index) {
    var data = this.data;
    var best = -1;
    var end = data.childStart[index] + data.childCount[index];
    for (var c = data.childStart[index]; c < end; c++) if (best === -1 || data.w[c] > data.w[best]) best = c;
    return best;
  };

  /** The next drawn node to the left or right in the same row, or -1. */
  FlameGraph.prototype.neighbour = function (index, direction) {
    var data = this.data;
    var depth = data.depth[index];
    for (var i = index + direction; i > 0 && i < data.n && data.depth[i] === depth; i += direction) {
      // Breadth-first order lists a row left to right across parents; stay inside the zoom.
      if (this.isVisible(i)) return i;
    }
    return -1;
  };

  FlameGraph.prototype.isVisible = function (index) {
    var data = this.data;
    for (var a = index; a !== -1; a = data.parent[a]) if (a === this.zoom) return data.w[index] > 0;
    return false;
  };

  FlameGraph.prototype.describe = function (index) {
    var data = this.data;
    var total = data.total[0] || 1;
    var where = data.files[index] ? data.files[index] + ":" + data.lines[index] : "unknown location";
    return data.names[index] + " (" + where + "): total " + this.formatValue(data.total[index]) + ", " +
      global.Greenflame.formatPercent(data.total[index] / total);
  };

  /** A value in the graph's unit, with the time it stands for: "21 samples (0.21 s)". */
  FlameGraph.prototype.formatValue = function (value) {
    var G = global.Greenflame;
    var seconds = G.valueSeconds(value, this.unit, this.periodNs);
    var text = G.formatCount(value) + " " + this.unit;
    if (seconds === null) return text;
    if (this.unit !== "samples") return G.formatDuration(seconds);
    return text + " (" + G.formatDuration(seconds) + ")";
  };

  FlameGraph.prototype.tooltipLines = function (index) {
    var G = global.Greenflame;
    var data = this.data;
    var total = data.total[0] || 1;
    var lines = [["", data.names[index]]];
    lines.push(["Location", data.files[index] ? data.files[index] + ":" + data.lines[index] : "unknown"]);
    if (data.pruned[index]) lines.push(["Folded", G.formatCount(data.pruned[index]) + " smaller frames (over the node budget)"]);
    else lines.push(["Code", KIND_NAMES[data.kinds[index]]]);
    if (this.marked && this.marked[index] !== -1) lines.push(["Finding", String(this.marks[this.marked[index]].title || "")]);
    if (data.diff) {
      var before = data.baseRoot ? data.baseTotal[index] / data.baseRoot : 0;
      var after = data.targetRoot ? data.total[index] / data.targetRoot : 0;
      lines.push(["Base", G.formatCount(data.baseTotal[index]) + " " + this.unit + " (" + G.formatPercent(before) + ")"]);
      lines.push(["Compared", G.formatCount(data.total[index]) + " " + this.unit + " (" + G.formatPercent(after) + ")"]);
      lines.push(["Change in share", G.formatSigned(after - before)]);
      return lines;
    }
    lines.push(["Self", this.formatValue(data.self[index]) + ", " + G.formatPercent(data.self[index] / total)]);
    lines.push(["Total", this.formatValue(data.total[index]) + ", " + G.formatPercent(data.total[index] / total)]);
    return lines;
  };

  FlameGraph.prototype.showTooltip = function (index, x, y) {
    var tip = this.tooltip;
    var lines = this.tooltipLines(index);
    while (tip.firstChild) tip.removeChild(tip.firstChild);
    for (var i = 0; i < lines.length; i++) {
      var div = document.createElement("div");
      if (lines[i][0] === "Finding") div.className = "finding";
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
    var canvasBox = this.canvas.getBoundingClientRect();
    var box = tip.parentNode.getBoundingClientRect();
    var left = canvasBox.left - box.left + x + 14;
    var maxLeft = box.width - tip.offsetWidth - 4;
    tip.style.left = Math.max(0, Math.min(left, maxLeft)) + "px";
    tip.style.top = canvasBox.top - box.top + y + 16 + "px";
  };

  /* ---- the minimap ------------------------------------------------------------ */

  var MINIMAP_MIN_WIDTH = 1;

  /**
   * The whole graph (unzoomed) squeezed into a strip, with the part the scroll area shows
   * outlined; clicking or dragging on it scrolls there. Redrawn at the next animation frame
   * after a graph draw or a scroll (never inside the graph's own redraw); the graph's picture
   * is kept and re-rendered only when the frames, colours, search or marks change, so
   * zooming costs it nothing.
   */
  function Minimap(canvas, graph, scroller) {
    this.canvas = canvas;
    this.graph = graph;
    this.scroller = scroller;
    this.dragging = false;
    this.pending = false;
    this.picture = document.createElement("canvas");
    this.drawn = null;
    var self = this;
    scroller.addEventListener("scroll", function () { self.schedule(); });
    canvas.addEventListener("mousedown", function (event) { self.dragging = true; self.scrollTo(event); event.preventDefault(); });
    global.addEventListener("mousemove", function (event) { if (self.dragging) self.scrollTo(event); });
    global.addEventListener("mouseup", function () { self.dragging = false; });
  }

  Minimap.prototype.schedule = function () {
    if (this.pending) return;
    this.pending = true;
    var self = this;
    global.requestAnimationFrame(function () { self.pending = false; self.draw(); });
  };

  /** Render the graph's picture into the kept canvas when what it shows changed. */
  Minimap.prototype.render = function (width, height, ratio) {
    var graph = this.graph;
    var state = [graph.data, graph.color, graph.search, graph.marked, width, height, ratio];
    var same = this.drawn && state.every(function (value, i) { return value === this.drawn[i]; }, this);
    if (same) return;
    this.drawn = state;
    var picture = this.picture;
    picture.width = Math.round(width * ratio);
    picture.height = Math.round(height * ratio);
    var ctx = picture.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    var rowHeight = height / (graph.data.maxDepth + 1);
    graph.eachVisible(0, width, MINIMAP_MIN_WIDTH, function (index, left, w) {
      ctx.fillStyle = graph.fillFor(index, false);
      ctx.fillRect(left, graph.data.depth[index] * rowHeight, Math.max(w - 0.5, 0.5), Math.max(rowHeight, 0.5));
    });
  };

  Minimap.prototype.draw = function () {
    var canvas = this.canvas;
    var graph = this.graph;
    var ratio = global.devicePixelRatio || 1;
    var width = canvas.clientWidth || 300;
    var height = canvas.clientHeight || 36;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    this.render(width, height, ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(this.picture, 0, 0);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    var full = (graph.data.maxDepth + 1) * ROW_HEIGHT;
    var scroller = this.scroller;
    if (scroller.clientHeight < full) {
      var top = (scroller.scrollTop / full) * height;
      var shown = (scroller.clientHeight / full) * height;
      ctx.strokeStyle = graph.theme ? graph.theme.outline : "#111";
      ctx.lineWidth = 2;
      ctx.strokeRect(1, top + 1, width - 2, Math.max(shown - 2, 2));
    }
  };

  Minimap.prototype.scrollTo = function (event) {
    var box = this.canvas.getBoundingClientRect();
    var fraction = Math.min(Math.max((event.clientY - box.top) / Math.max(box.height, 1), 0), 1);
    var full = (this.graph.data.maxDepth + 1) * ROW_HEIGHT;
    this.scroller.scrollTop = fraction * full - this.scroller.clientHeight / 2;
  };

  global.GreenflameFlamegraph = {
    layout: layout,
    treeOf: treeOf,
    childAt: childAt,
    pathOf: pathOf,
    findPath: findPath,
    FlameGraph: FlameGraph,
    Minimap: Minimap,
    ROW_HEIGHT: ROW_HEIGHT,
    formatPercent: function (f) { return global.Greenflame.formatPercent(f); },
    formatCount: function (v) { return global.Greenflame.formatCount(v); },
  };
})(window);
