/* The search in the page URL, so a search can be shared or reloaded: on load it reads the shared
   search (the image URL and the crop; the server has already rendered its results and filled the
   form), and after each search it writes the current one with history.replaceState (no new history
   entry), and the server's #share-link with it. An uploaded photo cannot travel in a URL: photo=upload
   makes a reload say so plainly.
   The keys are the server's SHARE_KEYS (search/views.py); a new one (e.g. a chosen object's box,
   which travels as the crop) is added to both. */
import { parseCrop } from "./crop-rect.js";

const FIELD_KEYS = ["crop", "category", "min_price", "max_price"];

/** {imageUrl, crop} of the search in the page's address ("" and null when it has none). */
export function readSharedSearch() {
  const params = new URLSearchParams(window.location.search);
  return { imageUrl: params.get("url") || "", crop: parseCrop(params.get("crop")) };
}

/** Puts the search just made in the page's address: its image URL (or photo=upload) and `fields`. */
export function writeSearch({ imageUrl, fields }) {
  const params = new URLSearchParams();
  if (imageUrl) {
    params.set("url", imageUrl);
  } else {
    params.set("photo", "upload");
  }
  FIELD_KEYS.forEach((key) => {
    if (fields[key]) {
      params.set(key, fields[key]);
    }
  });
  window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
  // The server's "Link to this search" (a shared search) follows: an uploaded photo has no link.
  const link = document.getElementById("share-link");
  if (link) {
    const address = window.location.href;
    link.href = address;
    link.textContent = address.length > 80 ? address.slice(0, 79) + "…" : address; // as the server shows it
    link.parentElement.hidden = !imageUrl;
  }
}
