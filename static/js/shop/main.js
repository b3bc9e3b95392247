/* "Shop by photo", enhanced: the entry point of templates/search/shop.html (a native ES module, no
   build step). Without JavaScript, or in a browser without modules, the form posts to the server and
   the page works as is. With it: a photo from the picker, camera, drag and drop, clipboard or URL is
   searched as soon as it is chosen (a typed URL when the form is sent); the things found in it show
   over the preview, the main one pre-selected as the crop, and the others' hits in rows; filters and
   crops re-run the search with the photo kept in memory; on a narrow screen the page then scrolls to
   the results; and the page URL holds the image URL, crop and filters, so a search can be shared or
   reloaded. This module only creates the parts and connects them:
     photo-input.js  choosing a photo            preview.js  the photo, its crop (crop-box.js, crop-rect.js)
     filters.js      the filter fields (folded)  search.js   the session: photo kept, debounce, newest wins (api.js)
     results.js      result cards and warnings   status.js   busy, status line, error
     objects.js      the things in the photo     url-state.js  the search in the page URL
     feedback.js     "This one" / "Not what I'm looking for" on each hit
   A feature over the photo draws in preview.stage once preview.image loads, moves the crop with
   preview.setCrop() and then calls session.run() (the crop lands in the page URL with it), and adds
   rows with results.onRender() (objects.js does all three). */
import { createFeedback } from "./feedback.js";
import { createFilters } from "./filters.js";
import { createObjects } from "./objects.js";
import { createPhotoInput } from "./photo-input.js";
import { createPreview } from "./preview.js";
import { createResults } from "./results.js";
import { createSearch } from "./search.js";
import { createStatus } from "./status.js";
import { readSharedSearch, writeSearch } from "./url-state.js";

// Below this width the form and the results stack (shop.css), so the results start off screen.
const NARROW = window.matchMedia("(max-width: 799px)");
const CALM = window.matchMedia("(prefers-reduced-motion: reduce)");

function start(form) {
  const status = createStatus();
  const results = createResults();
  const preview = createPreview({
    onCropChange() {
      objects.cropEdited();
      if (session.hasPhoto()) {
        session.runSoon();
      }
    },
  });
  const filters = createFilters({
    onChange() {
      if (session.searched() && session.hasPhoto()) {
        session.runSoon();
      }
    },
  });
  const objects = createObjects({ preview, results, onPick: () => searchAndShow() });
  createFeedback({
    root: document.getElementById("results"),
    csrfToken: () => form.elements.csrfmiddlewaretoken.value,
  });
  const session = createSearch({
    form,
    status,
    results,
    readFields() {
      const crop = objects.searchCrop();
      return crop ? { ...filters.values(), crop } : filters.values();
    },
    onSearched(fields) {
      writeSearch({ imageUrl: session.imageUrl(), fields });
    },
  });

  /** Searches now; on a narrow screen, then brings the results (or the error) into view. */
  async function searchAndShow() {
    const painted = await session.run();
    const error = document.getElementById("search-error");
    const target = painted ? document.getElementById("results") : error.hidden ? null : error;
    if (target && NARROW.matches) {
      target.scrollIntoView({ block: "start", behavior: CALM.matches ? "auto" : "smooth" });
    }
  }

  const photoInput = createPhotoInput(form, {
    onFile(file) {
      status.clearError();
      objects.clear();
      session.useFile(file);
      preview.showFile(file);
      searchAndShow();
    },
    onUrl(url, { typed }) {
      status.clearError();
      objects.clear();
      session.useUrl(url);
      preview.showUrl(url);
      if (!typed) {
        searchAndShow(); // dropped or pasted; a URL being typed is searched when the form is sent
      }
    },
    onRejected: status.showError,
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = photoInput.typedUrl();
    // A typed URL wins: choosing a file empties this field, so a URL here is what was meant last.
    if (typed && typed !== session.imageUrl()) {
      photoInput.useUrl(typed, { typed: true });
    }
    searchAndShow();
  });

  // A shared or reloaded search. The server already searched an image URL and rendered the results
  // (or its error), with the things it found: keep them and show the photo. A crop waits for the
  // photo it belongs to.
  const shared = readSharedSearch();
  if (shared.crop) {
    preview.keepCropForNextPhoto(shared.crop);
  }
  if (shared.imageUrl) {
    session.useUrl(shared.imageUrl);
    preview.showUrl(shared.imageUrl);
    objects.showServerAnswer(filters.values());
  }
}

document.documentElement.classList.add("has-js");
const form = document.getElementById("search-form");
if (form) {
  start(form);
}
