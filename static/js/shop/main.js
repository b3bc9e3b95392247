/* "Shop by photo", enhanced: the entry point of templates/search/shop.html (a native ES module, no
   build step). Without JavaScript, or in a browser without modules, the form posts to the server and
   the page works as is. With it: a photo from the picker, camera, drag and drop, clipboard or URL; a
   crop box on the preview; searches through the JSON API; filters and crops re-run the search with the
   photo kept in memory; and the page URL holds the image URL, crop and filters, so a search can be
   shared or reloaded. This module only creates the parts and connects them:
     photo-input.js  choosing a photo            preview.js  the photo, its crop (crop-box.js, crop-rect.js)
     filters.js      the filter fields           search.js   the session: photo kept, debounce, newest wins (api.js)
     results.js      result cards and warnings   status.js   busy, status line, error
     url-state.js    the search in the page URL
   A feature over the photo (e.g. detected objects) is one more module created here: it draws in
   preview.stage once preview.image loads, moves the crop with preview.setCrop() and then calls
   session.run() (the crop lands in the page URL with it), and adds rows with results.onRender(). */
import { createFilters } from "./filters.js";
import { createPhotoInput } from "./photo-input.js";
import { createPreview } from "./preview.js";
import { createResults } from "./results.js";
import { createSearch } from "./search.js";
import { createStatus } from "./status.js";
import { readSharedSearch, writeSearch } from "./url-state.js";

function start(form) {
  const status = createStatus();
  const results = createResults();
  const preview = createPreview({
    onCropChange() {
      if (session.searched()) {
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
  const session = createSearch({
    form,
    status,
    results,
    readFields() {
      const crop = preview.cropValue();
      return crop ? { ...filters.values(), crop } : filters.values();
    },
    onSearched() {
      writeSearch({ imageUrl: session.imageUrl(), fields: session.fields() });
    },
  });
  const photoInput = createPhotoInput(form, {
    onFile(file) {
      status.clearError();
      session.useFile(file);
      preview.showFile(file);
    },
    onUrl(url) {
      status.clearError();
      session.useUrl(url);
      preview.showUrl(url);
    },
    onRejected: status.showError,
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = photoInput.typedUrl();
    // A typed URL wins: choosing a file empties this field, so a URL here is what was meant last.
    if (typed && typed !== session.imageUrl()) {
      photoInput.useUrl(typed);
    }
    session.run();
  });

  // A shared or reloaded search. The server already searched an image URL and rendered the results
  // (or its error): keep them and show the photo. A crop waits for the photo it belongs to.
  const shared = readSharedSearch();
  if (shared.crop) {
    preview.keepCropForNextPhoto(shared.crop);
  }
  if (shared.imageUrl) {
    session.useUrl(shared.imageUrl);
    preview.showUrl(shared.imageUrl);
  }
}

document.documentElement.classList.add("has-js");
const form = document.getElementById("search-form");
if (form) {
  start(form);
}
