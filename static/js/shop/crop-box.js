/* The crop box over the photo preview: a widget that knows nothing of searching.
   Drag the box to move it, drag a corner to resize it (pointer events: mouse, pen and touch alike).
   With the box focused, arrow keys move it and Shift + arrow keys resize it. `onCommit` runs when
   the shopper finishes a change; `set()` moves the box from code without calling it. */
import { FULL, applyDrag, describeCrop, fitRect, formatCrop, isFull } from "./crop-rect.js";

const KEY_STEP = 0.02;
const KEYS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

export class CropBox {
  constructor(stage, box, onCommit = () => {}) {
    this.stage = stage;
    this.box = box;
    this.onCommit = onCommit;
    this.rect = { ...FULL };
    this.drag = null;
    box.addEventListener("pointerdown", (event) => this.start(event));
    box.addEventListener("pointermove", (event) => this.move(event));
    box.addEventListener("pointerup", (event) => this.end(event));
    box.addEventListener("pointercancel", (event) => this.end(event));
    box.addEventListener("keydown", (event) => this.key(event));
    this.render();
  }

  set(rect) {
    this.rect = fitRect(rect);
    this.render();
  }

  reset() {
    this.set(FULL);
  }

  isFull() {
    return isFull(this.rect);
  }

  toString() {
    return formatCrop(this.rect);
  }

  describe() {
    return describeCrop(this.rect);
  }

  render() {
    const s = this.box.style;
    s.left = this.rect.x * 100 + "%";
    s.top = this.rect.y * 100 + "%";
    s.width = this.rect.w * 100 + "%";
    s.height = this.rect.h * 100 + "%";
  }

  start(event, handle = null) {
    if (event.pointerType === "mouse" && event.button !== 0) {
      return;
    }
    event.preventDefault();
    const area = this.stage.getBoundingClientRect();
    this.drag = {
      id: event.pointerId,
      handle: handle || event.target.getAttribute("data-handle") || "move",
      x: event.clientX,
      y: event.clientY,
      rect: { ...this.rect },
      width: area.width,
      height: area.height,
    };
    this.box.setPointerCapture(event.pointerId);
    this.box.focus({ preventScroll: true });
  }

  /** Takes over a pointer pressed elsewhere over the photo (e.g. on a thing's dot) as a move of the
   * box, from where it was pressed: a drag that happens to start on a dot still moves the crop. */
  grab(pressed, moved) {
    this.start(pressed, "move");
    this.move(moved);
  }

  move(event) {
    const d = this.drag;
    if (!d || event.pointerId !== d.id) {
      return;
    }
    const dx = (event.clientX - d.x) / d.width;
    const dy = (event.clientY - d.y) / d.height;
    this.set(applyDrag(d.rect, d.handle, dx, dy));
  }

  end(event) {
    if (!this.drag || event.pointerId !== this.drag.id) {
      return;
    }
    const moved = this.drag.x !== event.clientX || this.drag.y !== event.clientY;
    this.drag = null;
    if (this.box.hasPointerCapture(event.pointerId)) {
      this.box.releasePointerCapture(event.pointerId);
    }
    if (moved) {
      this.onCommit(this);
    }
  }

  key(event) {
    const step = KEYS[event.key];
    if (!step) {
      return;
    }
    event.preventDefault();
    const dx = step[0] * KEY_STEP;
    const dy = step[1] * KEY_STEP;
    // Shift resizes from the bottom-right corner; plain arrows move the whole box.
    this.set(applyDrag(this.rect, event.shiftKey ? "se" : "move", dx, dy));
    this.onCommit(this);
  }
}
