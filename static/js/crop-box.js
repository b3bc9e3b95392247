/* Crop box over the photo preview.
   Drag the box to move it, drag a corner to resize it (pointer events: mouse, pen and touch alike).
   With the box focused, arrow keys move it and Shift + arrow keys resize it.
   The crop is kept as fractions of the image (x, y, w, h), which is what the search API takes. */
(function () {
  "use strict";

  var MIN_SIDE = 0.05; // smaller crops carry too little of the photo to search with
  var KEY_STEP = 0.02;
  var FULL = { x: 0, y: 0, w: 1, h: 1 };

  function clamp(value, low, high) {
    return Math.min(high, Math.max(low, value));
  }

  function round(value) {
    return Math.round(value * 10000) / 10000;
  }

  // Left/top edges move with the pointer while the opposite edge stays put.
  function dragStartEdge(start, size, delta) {
    var end = start + size;
    var moved = clamp(start + delta, 0, end - MIN_SIDE);
    return [moved, end - moved];
  }

  function applyDrag(rect, handle, dx, dy) {
    var r = { x: rect.x, y: rect.y, w: rect.w, h: rect.h };
    if (handle === "move") {
      r.x = clamp(rect.x + dx, 0, 1 - rect.w);
      r.y = clamp(rect.y + dy, 0, 1 - rect.h);
      return r;
    }
    var horizontal;
    var vertical;
    if (handle.indexOf("w") >= 0) {
      horizontal = dragStartEdge(rect.x, rect.w, dx);
      r.x = horizontal[0];
      r.w = horizontal[1];
    } else {
      r.w = clamp(rect.w + dx, MIN_SIDE, 1 - rect.x);
    }
    if (handle.indexOf("n") >= 0) {
      vertical = dragStartEdge(rect.y, rect.h, dy);
      r.y = vertical[0];
      r.h = vertical[1];
    } else {
      r.h = clamp(rect.h + dy, MIN_SIDE, 1 - rect.y);
    }
    return r;
  }

  function CropBox(stage, box, onCommit) {
    this.stage = stage;
    this.box = box;
    this.onCommit = onCommit || function () {};
    this.rect = Object.assign({}, FULL);
    this.drag = null;
    box.addEventListener("pointerdown", this.start.bind(this));
    box.addEventListener("pointermove", this.move.bind(this));
    box.addEventListener("pointerup", this.end.bind(this));
    box.addEventListener("pointercancel", this.end.bind(this));
    box.addEventListener("keydown", this.key.bind(this));
    this.render();
  }

  CropBox.prototype.set = function (rect) {
    var w = clamp(rect.w, MIN_SIDE, 1);
    var h = clamp(rect.h, MIN_SIDE, 1);
    this.rect = { x: clamp(rect.x, 0, 1 - w), y: clamp(rect.y, 0, 1 - h), w: w, h: h };
    this.render();
  };

  CropBox.prototype.reset = function () {
    this.set(FULL);
  };

  CropBox.prototype.isFull = function () {
    var r = this.rect;
    return r.x < 0.001 && r.y < 0.001 && r.w > 0.999 && r.h > 0.999;
  };

  CropBox.prototype.toString = function () {
    var r = this.rect;
    return [r.x, r.y, r.w, r.h].map(round).join(",");
  };

  CropBox.prototype.describe = function () {
    var r = this.rect;
    var pct = function (v) { return Math.round(v * 100) + "%"; };
    if (this.isFull()) {
      return "Searching the whole photo.";
    }
    return "Searching " + pct(r.w) + " × " + pct(r.h) + " of the photo, " + pct(r.x) +
      " from the left and " + pct(r.y) + " from the top.";
  };

  CropBox.prototype.render = function () {
    var s = this.box.style;
    s.left = this.rect.x * 100 + "%";
    s.top = this.rect.y * 100 + "%";
    s.width = this.rect.w * 100 + "%";
    s.height = this.rect.h * 100 + "%";
  };

  CropBox.prototype.start = function (event) {
    if (event.pointerType === "mouse" && event.button !== 0) {
      return;
    }
    event.preventDefault();
    var area = this.stage.getBoundingClientRect();
    this.drag = {
      id: event.pointerId,
      handle: event.target.getAttribute("data-handle") || "move",
      x: event.clientX,
      y: event.clientY,
      rect: Object.assign({}, this.rect),
      width: area.width,
      height: area.height,
    };
    this.box.setPointerCapture(event.pointerId);
    this.box.focus({ preventScroll: true });
  };

  CropBox.prototype.move = function (event) {
    var d = this.drag;
    if (!d || event.pointerId !== d.id) {
      return;
    }
    var dx = (event.clientX - d.x) / d.width;
    var dy = (event.clientY - d.y) / d.height;
    this.set(applyDrag(d.rect, d.handle, dx, dy));
  };

  CropBox.prototype.end = function (event) {
    if (!this.drag || event.pointerId !== this.drag.id) {
      return;
    }
    var moved = this.drag.x !== event.clientX || this.drag.y !== event.clientY;
    this.drag = null;
    if (this.box.hasPointerCapture(event.pointerId)) {
      this.box.releasePointerCapture(event.pointerId);
    }
    if (moved) {
      this.onCommit(this);
    }
  };

  var KEYS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  CropBox.prototype.key = function (event) {
    var step = KEYS[event.key];
    if (!step) {
      return;
    }
    event.preventDefault();
    var dx = step[0] * KEY_STEP;
    var dy = step[1] * KEY_STEP;
    // Shift resizes from the bottom-right corner; plain arrows move the whole box.
    this.set(applyDrag(this.rect, event.shiftKey ? "se" : "move", dx, dy));
    this.onCommit(this);
  };

  CropBox.parse = function (text) {
    var parts = String(text || "").split(",").map(Number);
    if (parts.length !== 4 || parts.some(function (v) { return !isFinite(v); })) {
      return null;
    }
    return { x: parts[0], y: parts[1], w: parts[2], h: parts[3] };
  };

  window.CropBox = CropBox;
})();
