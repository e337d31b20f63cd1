/*
 * The range chart: CPU and wall samples over time on a canvas. Dragging across it selects
 * a time range (onSelect(fromNs, toNs)); the selection stays shaded. Other ranges can be
 * shown beside it in their own colours (setMarks: the compare page's base and compared
 * ranges). Keyboard users pick ranges with the page's range controls instead.
 */
(function (global) {
  "use strict";

  var HEIGHT = 88;
  var PAD = { left: 56, right: 10, top: 10, bottom: 22 };
  var SERIES = [
    { key: "wall", color: "hsl(214, 60%, 45%)", label: "wall" },
    { key: "cpu", color: "hsl(12, 80%, 45%)", label: "CPU" },
  ];

  function TimeSeries(canvas, options) {
    this.canvas = canvas;
    this.onSelect = (options && options.onSelect) || null;
    this.points = [];
    this.from = 0;
    this.to = 1;
    this.step = 1;
    this.selection = null;
    this.marks = [];
    this.dragColor = (options && options.dragColor) || "rgba(26, 127, 55, 0.35)";
    this.drag = null;
    var self = this;
    canvas.addEventListener("mousedown", function (event) { self.startDrag(event); });
    global.addEventListener("mousemove", function (event) { self.moveDrag(event); });
    global.addEventListener("mouseup", function (event) { self.endDrag(event); });
    if (global.ResizeObserver) new global.ResizeObserver(function () { self.draw(); }).observe(canvas);
  }

  /** body: the timeseries API's answer; selection: [fromNs, toNs] or null. */
  TimeSeries.prototype.setData = function (body, selection) {
    this.points = body.points || [];
    this.from = body.from_unix_ns;
    this.to = body.to_unix_ns;
    this.step = body.step_ns;
    this.selection = selection;
    this.draw();
  };

  /** Ranges shaded in their own colour: [{range: [fromNs, toNs], color, label}]. */
  TimeSeries.prototype.setMarks = function (marks) {
    this.marks = marks || [];
    this.draw();
  };

  TimeSeries.prototype.plotWidth = function () {
    return Math.max((this.canvas.clientWidth || 600) - PAD.left - PAD.right, 1);
  };

  TimeSeries.prototype.xOf = function (ns) {
    return PAD.left + ((ns - this.from) / Math.max(this.to - this.from, 1)) * this.plotWidth();
  };

  TimeSeries.prototype.nsAt = function (x) {
    var fraction = Math.min(Math.max((x - PAD.left) / this.plotWidth(), 0), 1);
    return this.from + fraction * (this.to - this.from);
  };

  TimeSeries.prototype.draw = function () {
    var canvas = this.canvas;
    var ratio = global.devicePixelRatio || 1;
    var width = canvas.clientWidth || 600;
    canvas.style.height = HEIGHT + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, HEIGHT);
    ctx.font = "11px system-ui, sans-serif";
    var plotHeight = HEIGHT - PAD.top - PAD.bottom;
    var peak = 1;
    this.points.forEach(function (p) { peak = Math.max(peak, p.wall, p.cpu); });
    var style = global.getComputedStyle(canvas);
    ctx.fillStyle = style.getPropertyValue("--bg-soft").trim() || "#f6f8fa";
    ctx.fillRect(PAD.left, PAD.top, this.plotWidth(), plotHeight);
    var self = this;
    this.marks.forEach(function (mark) {
      if (!mark.range) return;
      var from = self.xOf(mark.range[0]);
      var to = self.xOf(mark.range[1]);
      ctx.fillStyle = mark.color;
      ctx.fillRect(Math.min(from, to), PAD.top, Math.max(Math.abs(to - from), 2), plotHeight);
      if (mark.label) {
        ctx.fillStyle = style.getPropertyValue("--fg").trim() || "#111";
        ctx.font = "11px system-ui, sans-serif";
        ctx.textBaseline = "top";
        ctx.fillText(mark.label, Math.min(from, to) + 2, PAD.top + 2);
      }
    });
    if (this.selection) {
      var left = this.xOf(this.selection[0]);
      var right = this.xOf(this.selection[1]);
      ctx.fillStyle = "rgba(26, 127, 55, 0.18)";
      ctx.fillRect(Math.min(left, right), PAD.top, Math.abs(right - left), plotHeight);
    }
    var barWidth = Math.max((this.step / Math.max(this.to - this.from, 1)) * this.plotWidth(), 1);
    SERIES.forEach(function (series, n) {
      ctx.fillStyle = series.color;
      ctx.globalAlpha = n === 0 ? 0.35 : 0.9;
      self.points.forEach(function (p) {
        var h = (p[series.key] / peak) * plotHeight;
        ctx.fillRect(self.xOf(p.start_unix_ns), PAD.top + plotHeight - h, Math.max(barWidth - (n ? 1 : 0), 1), h);
      });
    });
    ctx.globalAlpha = 1;
    ctx.fillStyle = style.getPropertyValue("--muted").trim() || "#444";
    ctx.textBaseline = "top";
    ctx.fillText(global.Greenflame.formatCount(peak), 4, PAD.top);
    ctx.fillText("0", 4, PAD.top + plotHeight - 10);
    ctx.fillText(global.Greenflame.formatTime(this.from), PAD.left, HEIGHT - PAD.bottom + 6);
    var end = global.Greenflame.formatTime(this.to);
    ctx.fillText(end, width - PAD.right - ctx.measureText(end).width, HEIGHT - PAD.bottom + 6);
    if (this.drag) {
      ctx.fillStyle = this.dragColor;
      ctx.fillRect(Math.min(this.drag.start, this.drag.end), PAD.top, Math.abs(this.drag.end - this.drag.start), plotHeight);
    }
  };

  TimeSeries.prototype.localX = function (event) {
    return event.clientX - this.canvas.getBoundingClientRect().left;
  };

  TimeSeries.prototype.startDrag = function (event) {
    var x = this.localX(event);
    this.drag = { start: x, end: x };
    event.preventDefault();
  };

  TimeSeries.prototype.moveDrag = function (event) {
    if (!this.drag) return;
    this.drag.end = this.localX(event);
    this.draw();
  };

  TimeSeries.prototype.endDrag = function (event) {
    if (!this.drag) return;
    this.drag.end = this.localX(event);
    var a = this.nsAt(Math.min(this.drag.start, this.drag.end));
    var b = this.nsAt(Math.max(this.drag.start, this.drag.end));
    this.drag = null;
    if (Math.abs(this.xOf(b) - this.xOf(a)) < 3) { this.draw(); return; }  // a click, not a drag
    this.selection = [a, b];
    this.draw();
    if (this.onSelect) this.onSelect(Math.floor(a), Math.ceil(b));
  };

  global.GreenflameTimeSeries = { TimeSeries: TimeSeries, SERIES: SERIES };
})(window);
