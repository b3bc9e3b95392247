/* Crop rectangles: the crop's geometry and its text form, no DOM.
   A crop is {x, y, w, h} in fractions of the photo (0..1), which is what the search API takes and
   what the page URL carries as "x,y,w,h". The crop box (crop-box.js) and the URL state (url-state.js)
   share these; so can anything else that speaks in boxes over the photo. */

export const MIN_SIDE = 0.05; // smaller crops carry too little of the photo to search with
export const FULL = Object.freeze({ x: 0, y: 0, w: 1, h: 1 });

export function clamp(value, low, high) {
  return Math.min(high, Math.max(low, value));
}

function round(value) {
  return Math.round(value * 10000) / 10000;
}

/** The rectangle moved and shrunk as little as needed to lie inside the photo, sides at least MIN_SIDE. */
export function fitRect(rect) {
  const w = clamp(rect.w, MIN_SIDE, 1);
  const h = clamp(rect.h, MIN_SIDE, 1);
  return { x: clamp(rect.x, 0, 1 - w), y: clamp(rect.y, 0, 1 - h), w, h };
}

export function isFull(rect) {
  return rect.x < 0.001 && rect.y < 0.001 && rect.w > 0.999 && rect.h > 0.999;
}

export function formatCrop(rect) {
  return [rect.x, rect.y, rect.w, rect.h].map(round).join(",");
}

/** "x,y,w,h" as a rectangle (not yet fitted to the photo), or null when it is not four numbers. */
export function parseCrop(text) {
  const parts = String(text || "").split(",").map(Number);
  if (parts.length !== 4 || parts.some((v) => !isFinite(v))) {
    return null;
  }
  return { x: parts[0], y: parts[1], w: parts[2], h: parts[3] };
}

/** The crop in words (the server says the same first: crop_readout() in search/shop_photo.py). */
export function describeCrop(rect) {
  const pct = (v) => Math.round(v * 100) + "%";
  if (isFull(rect)) {
    return "Searching the whole photo.";
  }
  return "Searching " + pct(rect.w) + " × " + pct(rect.h) + " of the photo, " + pct(rect.x) +
    " from the left and " + pct(rect.y) + " from the top.";
}

// Left/top edges move with the pointer while the opposite edge stays put.
function dragStartEdge(start, size, delta) {
  const end = start + size;
  const moved = clamp(start + delta, 0, end - MIN_SIDE);
  return [moved, end - moved];
}

/** `rect` after dragging `handle` ("move" or a corner: "nw", "ne", "sw", "se") by (dx, dy) fractions. */
export function applyDrag(rect, handle, dx, dy) {
  const r = { x: rect.x, y: rect.y, w: rect.w, h: rect.h };
  if (handle === "move") {
    r.x = clamp(rect.x + dx, 0, 1 - rect.w);
    r.y = clamp(rect.y + dy, 0, 1 - rect.h);
    return r;
  }
  if (handle.includes("w")) {
    [r.x, r.w] = dragStartEdge(rect.x, rect.w, dx);
  } else {
    r.w = clamp(rect.w + dx, MIN_SIDE, 1 - rect.x);
  }
  if (handle.includes("n")) {
    [r.y, r.h] = dragStartEdge(rect.y, rect.h, dy);
  } else {
    r.h = clamp(rect.h + dy, MIN_SIDE, 1 - rect.y);
  }
  return r;
}

/* A found object this large is the whole photo, not a thing in it: no box is drawn for it and it is
   never the pre-selected crop. Same rule as WHOLE_PHOTO_AREA in search/shop_photo.py. */
const WHOLE_PHOTO_AREA = 0.9;

export function coversPhoto(rect) {
  return rect.w * rect.h >= WHOLE_PHOTO_AREA;
}

/** Where a box lies, in words ("top left", "in the middle"): for names people and screen readers use.
    Same words as place_in_photo() in search/shop_photo.py. */
export function describePlace(rect) {
  const third = (centre, low, mid, high) => (centre < 1 / 3 ? low : centre > 2 / 3 ? high : mid);
  const column = third(rect.x + rect.w / 2, "left", "centre", "right");
  const row = third(rect.y + rect.h / 2, "top", "middle", "bottom");
  return row === "middle" && column === "centre" ? "in the middle" : row + " " + column;
}
