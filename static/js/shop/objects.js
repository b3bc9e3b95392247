/* The things found in the shopper's photo (the API's `objects`): numbered dots over the preview, the
   main thing pre-selected as the crop, the "Other things in your photo" rows, and the line that says
   what the results grid shows. Owns #object-layer (in the preview's stage), #results-scope,
   #other-objects with its rows (#thing-row-template), and reads #photo-objects, the server's answer
   on a shared or reloaded search. The server has then rendered the same rows (search/_thing_row.html,
   also the row template), the crop box on the main thing and the readout's words: they are kept as
   they are, so nothing moves when this starts (where the dots go: dot-spots.js).

   The first search of a photo sends no crop: it answers the combined ranking (each product by its best
   evidence over the whole photo and the things in it) and the things. The main thing (the first that
   is not the whole photo) becomes the crop box WITHOUT a second search: the grid keeps the combined
   ranking, labelled so, and searches keep sending no crop while that pre-selection stands
   (searchCrop()), so a new filter refreshes the things too. Picking a thing (its dot or its row's
   button) searches it as a crop, which lands in the page URL; moving the box makes it the shopper's. */
import { coversPhoto, describePlace, fitRect, formatCrop } from "./crop-rect.js";
import { dotSpots } from "./dot-spots.js";

function pct(value) {
  return value * 100 + "%";
}

// The filters a search was made with: the things' own hits only stand while they are unchanged.
function filtersKey(fields) {
  return [fields.category, fields.min_price, fields.max_price].map((value) => value || "").join("|");
}

/** `onPick(thing)` runs after a thing became the crop by the shopper's choice: search it now. */
export function createObjects({ preview, results, onPick }) {
  const $ = (id) => document.getElementById(id);
  const layer = $("object-layer");
  const scope = $("results-scope");
  const section = $("other-objects");
  const list = $("other-objects-list");
  const rowTemplate = $("thing-row-template");
  const state = {
    things: [], // [{number, place, box, results, queryId}]: the last whole-photo answer's things, main first
    hitsFilters: null, // filtersKey of the search that found the things' hits
    selected: -1, // index of the thing whose box is the crop; -1: none
    preselected: false, // the crop is the automatic pre-selection, so searches still mean the whole photo
    fresh: true, // this photo's things have not been shown yet: the main one gets pre-selected
    rows: new Map(), // thing index -> its row (row()), for the things above
  };

  // Dots are placed in pixels (dotSpots), so they are placed again when the photo's size on screen
  // changes: the preview finishing loading (a shared link), a turned phone, a resized window.
  if (window.ResizeObserver && layer.parentElement) {
    let seen = "";
    new ResizeObserver(() => {
      const size = layer.parentElement.clientWidth + "x" + layer.parentElement.clientHeight;
      if (size !== seen && state.things.length) drawDots();
      seen = size;
    }).observe(layer.parentElement);
  }

  function name(thing) {
    return "Thing " + thing.number;
  }

  function select(index, automatic) {
    const thing = state.things[index];
    state.selected = index;
    state.preselected = automatic;
    const note = automatic
      ? name(thing) + " (" + thing.place + ") is marked. The results are for the whole photo and " +
        "everything found in it: pick a thing, or move the box, to search just that."
      : "";
    preview.setCrop(thing.box, note);
  }

  function pick(index) {
    state.fresh = false;
    select(index, false);
    drawDots();
    onPick(state.things[index]);
  }

  // A tap on a dot picks its thing; a drag that starts on a dot moves the crop box as if it had
  // started on the box (dots sit inside the box, often on its centre), so they never block a drag.
  function handDragsToTheCrop(dot) {
    let pressed = null;
    dot.addEventListener("pointerdown", (event) => {
      pressed = event;
      dot.setPointerCapture(event.pointerId); // a mouse leaving the dot still reports its moves here
    });
    dot.addEventListener("pointermove", (event) => {
      if (pressed && Math.hypot(event.clientX - pressed.clientX, event.clientY - pressed.clientY) > 8) {
        preview.grabCrop(pressed, event); // captures the pointer: its moves and release go to the crop box
        pressed = null;
      }
    });
    dot.addEventListener("pointerup", () => {
      pressed = null;
    });
  }

  function drawDots() {
    const nodes = [];
    const width = layer.clientWidth || layer.parentElement.clientWidth;
    const height = layer.clientHeight || layer.parentElement.clientHeight;
    const spots = dotSpots(state.things.map((thing) => thing.box), width, height);
    state.things.forEach((thing, index) => {
      const marked = index === state.selected;
      const outline = document.createElement("span");
      outline.className = "thing-outline";
      outline.classList.toggle("is-marked", marked);
      Object.assign(outline.style, {
        left: pct(thing.box.x),
        top: pct(thing.box.y),
        width: pct(thing.box.w),
        height: pct(thing.box.h),
      });
      const dot = document.createElement("button");
      dot.type = "button";
      dot.className = "thing-dot";
      dot.textContent = String(thing.number);
      dot.setAttribute("aria-label", name(thing) + " in your photo: search it");
      // Pressed: the results are this thing's alone. The pre-selected main thing is only marked (the
      // results are the whole photo's), and tapping it searches it alone.
      dot.classList.toggle("is-marked", marked);
      dot.setAttribute("aria-pressed", String(marked && !state.preselected));
      dot.dataset.box = formatCrop(thing.box);
      const spot = spots[index];
      dot.style.left = pct(spot.x);
      dot.style.top = pct(spot.y);
      dot.addEventListener("click", () => pick(index));
      handDragsToTheCrop(dot);
      nodes.push(outline, dot);
    });
    layer.replaceChildren(...nodes);
    layer.hidden = nodes.length === 0;
  }

  // The thing's part of the preview, drawn once the preview has loaded: whole, centred in the
  // canvas's square (its size is fixed in the markup, so drawing it moves nothing).
  function drawThumb(canvas, box) {
    const image = preview.image;
    if (!image.complete || !image.naturalWidth) {
      image.addEventListener("load", () => drawThumb(canvas, box), { once: true });
      return;
    }
    const sw = box.w * image.naturalWidth;
    const sh = box.h * image.naturalHeight;
    const scale = Math.min(canvas.width, canvas.height) / Math.max(sw, sh);
    const dw = sw * scale;
    const dh = sh * scale;
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    const x = box.x * image.naturalWidth;
    const y = box.y * image.naturalHeight;
    context.drawImage(image, x, y, sw, sh, (canvas.width - dw) / 2, (canvas.height - dh) / 2, dw, dh);
  }

  // A row's live parts: its button (or the server's link) searches its thing alone; its canvas
  // shows the thing's part of the photo.
  function wireRow(node, thing, index) {
    node.querySelector(".thing-row__search").addEventListener("click", (event) => {
      const elsewhere = event.ctrlKey || event.metaKey || event.shiftKey || event.altKey;
      if (event.currentTarget.href && elsewhere) {
        return; // the server's link, opened in a new tab or window: its own page does the search
      }
      event.preventDefault(); // the server's rows link to the same search: run it in this page instead
      pick(index);
    });
    drawThumb(node.querySelector(".thing-row__thumb"), thing.box);
  }

  // Rows by thing index while the things stay the same (a crop search shows the same rows again). A
  // row is made from #thing-row-template (the server's search/_thing_row.html, blank) unless the
  // server's row for that thing is already on the page (a shared search): it is kept as it is.
  function row(thing, index) {
    if (state.rows.has(index)) {
      return state.rows.get(index);
    }
    const node = rowTemplate.content.firstElementChild.cloneNode(true);
    node.querySelector(".thing-row__name").textContent = name(thing);
    node.querySelector(".thing-row__place").textContent = "· " + thing.place;
    node.querySelector(".thing-row__search").textContent = "Search only " + name(thing).toLowerCase();
    node.dataset.queryId = thing.queryId;
    node.dataset.thing = String(thing.number);
    const hits = node.querySelector(".thing-row__hits");
    hits.replaceChildren(
      ...thing.results.map((result, rank) => results.card(result, { queryId: thing.queryId, rank: rank + 1 })),
    );
    node.querySelector(".thing-row__none").hidden = thing.results.length > 0;
    wireRow(node, thing, index);
    state.rows.set(index, node);
    return node;
  }

  // The server's rows of a shared search, for the things it found (numbered as this script numbers them).
  function keepServerRows() {
    for (const node of list.querySelectorAll(":scope > .thing-row[data-thing]")) {
      const index = Number(node.dataset.thing) - 1;
      const thing = state.things[index];
      if (thing && !state.rows.has(index)) {
        wireRow(node, thing, index);
        state.rows.set(index, node);
      }
    }
  }

  // Rows for the things the grid is not about, while their hits match the filters now in use.
  function drawRows(fields) {
    const rows = [];
    if (state.hitsFilters === filtersKey(fields)) {
      state.things.forEach((thing, index) => {
        if (index !== state.selected) {
          rows.push(row(thing, index));
        }
      });
    }
    const shown = [...list.children];
    if (shown.length !== rows.length || rows.some((node, index) => node !== shown[index])) {
      list.replaceChildren(...rows); // not when they are the rows shown already: nothing to move
    }
    section.hidden = rows.length === 0;
  }

  function scopeText(fields) {
    const count = state.things.length;
    if (!fields.crop) {
      return count
        ? "Best matches for your whole photo and the " + (count === 1 ? "thing" : count + " things") +
            " found in it."
        : "Matches for your whole photo.";
    }
    const thing = state.things[state.selected];
    return thing
      ? "Matches for " + name(thing).toLowerCase() + " (" + thing.place + ") in your photo."
      : "Matches for the part of your photo inside the box.";
  }

  /** Takes in an answer (the API's, or the server's on a shared search) to a search that sent `fields`;
      `served`: the server's answer, whose rows are on the page already. */
  function show(data, fields, served = false) {
    if (!fields.crop) {
      // A whole-photo search: its things are the photo's things (a crop search finds none).
      state.things = ((data && data.objects) || [])
        .filter((found) => !coversPhoto(found.box))
        .map((found, index) => {
          const box = fitRect(found.box);
          const hits = found.results || [];
          return { number: index + 1, place: describePlace(box), box, results: hits, queryId: found.query_id || "" };
        });
      state.hitsFilters = filtersKey(fields);
      state.rows = new Map();
      if (served) {
        keepServerRows();
      }
      if ((state.fresh || state.preselected) && state.things.length) {
        select(0, true);
      } else {
        state.selected = -1;
        state.preselected = false;
      }
      state.fresh = false;
    } else {
      state.selected = state.things.findIndex((thing) => formatCrop(thing.box) === fields.crop);
    }
    drawDots();
    drawRows(fields);
    scope.textContent = scopeText(fields);
  }

  results.onRender((data, _section, fields) => show(data, fields));

  return {
    /** The crop to search with: none while the crop is only the automatic pre-selection. */
    searchCrop: () => (state.preselected ? "" : preview.cropValue()),
    /** The shopper moved, resized or reset the crop: it is theirs now, and no thing is selected. */
    cropEdited() {
      state.fresh = false;
      state.preselected = false;
      state.selected = state.things.findIndex((thing) => formatCrop(thing.box) === preview.cropValue());
      drawDots();
    },
    /** A new photo: forget the last one's things. */
    clear() {
      Object.assign(state, {
        things: [], hitsFilters: null, selected: -1, preselected: false, fresh: true, rows: new Map(),
      });
      drawDots();
      list.replaceChildren();
      section.hidden = true;
      scope.textContent = "";
    },
    /** The server searched a shared link and put its things in #photo-objects: show them as if the page
        had searched (`filters`: the filters the server used, as the form shows them). */
    showServerAnswer(filters) {
      const served = $("photo-objects");
      const objects = served ? JSON.parse(served.textContent) : null;
      if (objects && objects.length) {
        show({ objects }, filters, true);
      }
    },
  };
}
