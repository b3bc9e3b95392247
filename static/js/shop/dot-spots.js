/* The numbered dots over the shopper's photo (objects.js draws them): where each goes. Geometry only,
   no DOM: the dots are placed in pixels, so objects.js passes the preview's size on screen. */

/** Where each thing's dot goes, as fractions of the preview (`things`: their boxes, in fractions;
    `width` x `height`: the preview's size on screen in px). A dot (44 px, a finger's width) sits on
    its own thing: as near the thing's centre as it can while inside the thing's box, off the other
    dots, and off the smaller things inside it (a bag holding a box: the bag's dot goes on the bag,
    not on the box). Smaller things are placed first, having the least room. Only a thing with no free
    spot of its own gets the nearest free spot around it. */
export function dotSpots(things, width, height) {
  const centre = (box) => ({ x: box.x + box.w / 2, y: box.y + box.h / 2 });
  if (!width || !height) return things.map(centre);
  const size = 44;
  const half = size / 2;
  const boxes = things.map((box) => ({
    x0: box.x * width, y0: box.y * height, x1: (box.x + box.w) * width, y1: (box.y + box.h) * height,
    area: box.w * box.h,
  }));
  const clamp = (value, extent) => Math.min(Math.max(value, half), Math.max(extent - half, half));
  const placed = [];
  const free = (point) => placed.every((other) => Math.hypot(other.x - point.x, other.y - point.y) >= size);
  const within = (point, b) => point.x >= b.x0 && point.x <= b.x1 && point.y >= b.y0 && point.y <= b.y1;
  const spots = new Array(boxes.length);
  const order = boxes.map((_, index) => index).sort((a, b) => boxes[a].area - boxes[b].area);
  for (const index of order) {
    const b = boxes[index];
    const mid = { x: clamp((b.x0 + b.x1) / 2, width), y: clamp((b.y0 + b.y1) / 2, height) };
    const byNearness = (a, c) => Math.hypot(a.x - mid.x, a.y - mid.y) - Math.hypot(c.x - mid.x, c.y - mid.y);
    const inside = [mid];
    for (let y = b.y0 + half; y <= b.y1 - half; y += half) {
      for (let x = b.x0 + half; x <= b.x1 - half; x += half) {
        inside.push({ x: clamp(x, width), y: clamp(y, height) });
      }
    }
    inside.sort(byNearness);
    const onSmallerThing = (point) =>
      boxes.some((other, j) => j !== index && other.area < b.area && within(point, other));
    let spot = inside.find((point) => free(point) && !onSmallerThing(point)) || inside.find(free);
    for (let radius = half; !spot && radius < width + height; radius += half) {
      const ring = [];
      for (let step = 0; step < 16; step += 1) {
        const angle = (step / 16) * 2 * Math.PI;
        ring.push({ x: clamp(mid.x + radius * Math.cos(angle), width), y: clamp(mid.y + radius * Math.sin(angle), height) });
      }
      spot = ring.find(free);
    }
    spot = spot || mid;
    placed.push(spot);
    spots[index] = { x: spot.x / width, y: spot.y / height };
  }
  return spots;
}
