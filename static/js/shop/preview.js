/* The preview of the chosen photo and the crop on it. Owns #preview, #crop-stage, #preview-img, the
   crop box #crop-box (through CropBox), #crop-reset, #crop-readout, the hidden #id_crop field (what the
   form and the API send) and the drop zone's compact look once a photo shows.
   Hooks for drawing over the photo (e.g. detected objects): `stage` is the element to draw in (boxes
   placed in % of it line up with the photo), `image` fires "load" when a photo shows, and setCrop()
   moves the crop from code. */
import { CropBox } from "./crop-box.js";

/** `onCropChange()` runs after the shopper moves, resizes or resets the crop. */
export function createPreview({ onCropChange }) {
  const $ = (id) => document.getElementById(id);
  const panel = $("preview");
  const stage = $("crop-stage");
  const image = $("preview-img");
  const field = $("id_crop");
  const readout = $("crop-readout");
  const crop = new CropBox(stage, $("crop-box"), committed);
  let pendingCrop = null;
  let objectUrl = "";

  function syncField() {
    field.value = crop.isFull() ? "" : crop.toString();
    readout.textContent = crop.describe();
  }

  function committed() {
    syncField();
    onCropChange();
  }

  function show(src) {
    if (pendingCrop) {
      crop.set(pendingCrop);
      pendingCrop = null;
    } else {
      crop.reset();
    }
    syncField();
    panel.hidden = false;
    $("dropzone").classList.add("is-compact");
    if (image.getAttribute("src") !== src) {
      // The box the server reserved was for a shared search's photo (no layout shift when it arrives);
      // another photo sizes itself.
      ["style", "width", "height"].forEach((name) => image.removeAttribute(name));
      stage.removeAttribute("style");
    }
    image.src = src;
  }

  $("crop-reset").addEventListener("click", () => {
    crop.reset();
    committed();
  });
  image.addEventListener("error", () => {
    // The server has the final word (it may read formats the browser cannot show), so only say so.
    stage.hidden = true;
    readout.textContent = "This browser cannot show a preview of this file.";
  });
  image.addEventListener("load", () => {
    stage.hidden = false;
    if (!readout.textContent) {
      readout.textContent = crop.describe();
    }
  });

  return {
    stage,
    image,
    showFile(file) {
      if (objectUrl) {
        URL.revokeObjectURL(objectUrl);
      }
      objectUrl = URL.createObjectURL(file);
      show(objectUrl);
    },
    showUrl: show,
    /** A pointer pressed over the photo (not on the box) that the shopper drags: it moves the crop. */
    grabCrop(pressed, moved) {
      crop.grab(pressed, moved);
    },
    /** A crop from a shared link waits for its photo: the next photo shown starts with it. */
    keepCropForNextPhoto(rect) {
      pendingCrop = rect;
    },
    /** Moves the crop from code (no onCropChange: the caller decides whether to search). `note`, when
        given, is what the readout says instead of the crop's size and place. */
    setCrop(rect, note = "") {
      crop.set(rect);
      syncField();
      if (note) {
        readout.textContent = note;
      }
    },
    /** The crop as the API takes it ("x,y,w,h"), or "" for the whole photo. */
    cropValue: () => field.value,
  };
}
