/* "Shop by photo", enhanced. Without this script the form posts to the server and works as is.
   With it: photo from picker, camera, drag and drop, clipboard or URL; a crop box on the preview;
   searches through the JSON API; filters re-run the search with the photo kept in memory; and the
   page URL holds the crop and filters (and the image URL) so a search can be shared or reloaded. */
(function () {
  "use strict";

  document.documentElement.classList.add("has-js");
  var form = document.getElementById("search-form");
  if (!form || !window.fetch || !window.CropBox) {
    return;
  }

  var RESULTS = 24;
  var SEARCH_DELAY_MS = 350; // lets a burst of key presses or filter edits become one search
  var $ = function (id) { return document.getElementById(id); };
  var els = {
    dropzone: $("dropzone"),
    fileInput: $("id_image"),
    cameraInput: $("id_camera"),
    fileName: $("file-name"),
    url: $("id_url"),
    category: $("id_category"),
    minPrice: $("id_min_price"),
    maxPrice: $("id_max_price"),
    cropInput: $("id_crop"),
    preview: $("preview"),
    stage: $("crop-stage"),
    previewImg: $("preview-img"),
    cropReset: $("crop-reset"),
    readout: $("crop-readout"),
    button: $("search-button"),
    status: $("search-status"),
    statusText: $("search-status-text"),
    error: $("search-error"),
    warnings: $("search-warnings"),
    results: $("results"),
    grid: $("result-grid"),
    count: $("results-count"),
    empty: $("empty-state"),
    template: $("card-template"),
    reloadNotice: $("reload-notice"),
  };
  var maxBytes = Number(form.getAttribute("data-max-bytes")) || 0;
  var apiUrl = form.getAttribute("data-api-url");
  var pageParams = new URLSearchParams(window.location.search);
  var state = {
    file: null, // the chosen photo, kept so filters and crops re-run without choosing it again
    imageUrl: "",
    searched: form.getAttribute("data-searched") === "1",
    pendingCrop: CropBox.parse(pageParams.get("crop")), // a shared crop waits for its photo
    request: null,
    timer: 0,
    objectUrl: "",
  };
  var crop = new CropBox(els.stage, $("crop-box"), onCropChange);

  // ---- choosing a photo ---------------------------------------------------------------------
  function useFile(file) {
    if (!file) {
      return;
    }
    clearError();
    if (maxBytes && file.size > maxBytes) {
      showError("This photo is " + megabytes(file.size) + "; photos can be at most " + megabytes(maxBytes) + ".");
      return;
    }
    state.file = file;
    state.imageUrl = "";
    els.url.value = "";
    els.fileName.textContent = "Chosen: " + (file.name || "pasted image");
    els.fileName.hidden = false;
    if (els.reloadNotice) {
      els.reloadNotice.hidden = true;
    }
    if (state.objectUrl) {
      URL.revokeObjectURL(state.objectUrl);
    }
    state.objectUrl = URL.createObjectURL(file);
    showPreview(state.objectUrl);
  }

  function useUrl(url) {
    clearError();
    state.file = null;
    state.imageUrl = url;
    els.fileInput.value = "";
    els.cameraInput.value = "";
    els.fileName.hidden = true;
    showPreview(url);
  }

  function showPreview(src) {
    if (state.pendingCrop) {
      crop.set(state.pendingCrop);
      state.pendingCrop = null;
    } else {
      crop.reset();
    }
    syncCropField();
    els.preview.hidden = false;
    els.dropzone.classList.add("is-compact");
    els.previewImg.src = src;
  }

  els.previewImg.addEventListener("error", function () {
    // The server has the final word (it may read formats the browser cannot show), so only say so.
    els.stage.hidden = true;
    els.readout.textContent = "This browser cannot show a preview of this file.";
  });
  els.previewImg.addEventListener("load", function () {
    els.stage.hidden = false;
    els.readout.textContent = crop.describe();
  });

  els.fileInput.addEventListener("change", function () {
    els.cameraInput.value = "";
    useFile(els.fileInput.files[0]);
  });
  els.cameraInput.addEventListener("change", function () {
    els.fileInput.value = "";
    useFile(els.cameraInput.files[0]);
  });
  els.url.addEventListener("change", function () {
    var value = els.url.value.trim();
    if (value && els.url.checkValidity()) {
      useUrl(value);
    }
  });

  // Dropping anywhere on the page works; the drop zone shows where.
  document.addEventListener("dragover", function (event) {
    event.preventDefault();
    els.dropzone.classList.add("is-dragover");
  });
  document.addEventListener("dragleave", function (event) {
    if (!event.relatedTarget) {
      els.dropzone.classList.remove("is-dragover");
    }
  });
  document.addEventListener("drop", function (event) {
    event.preventDefault();
    els.dropzone.classList.remove("is-dragover");
    var data = event.dataTransfer;
    var file = imageFile(data.files);
    var link = (data.getData("text/uri-list") || data.getData("text/plain") || "").trim().split("\n")[0];
    if (file) {
      useFile(file);
    } else if (/^https?:\/\//i.test(link)) {
      els.url.value = link;
      useUrl(link);
    } else {
      showError("Drop a photo file or an image from another page.");
    }
  });

  document.addEventListener("paste", function (event) {
    var data = event.clipboardData;
    var file = data && imageFile(data.files);
    if (file) {
      event.preventDefault();
      useFile(file);
      return;
    }
    var text = data ? data.getData("text/plain").trim() : "";
    var typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
    if (!typing && /^https?:\/\/\S+$/i.test(text)) {
      event.preventDefault();
      els.url.value = text;
      useUrl(text);
    }
  });

  function imageFile(files) {
    for (var i = 0; files && i < files.length; i += 1) {
      if (!files[i].type || files[i].type.indexOf("image/") === 0) {
        return files[i];
      }
    }
    return files && files.length ? files[0] : null;
  }

  // ---- crop and filters ---------------------------------------------------------------------
  function syncCropField() {
    els.cropInput.value = crop.isFull() ? "" : crop.toString();
    els.readout.textContent = crop.describe();
  }

  function onCropChange() {
    syncCropField();
    if (state.searched) {
      scheduleSearch();
    }
  }

  els.cropReset.addEventListener("click", function () {
    crop.reset();
    onCropChange();
  });

  [els.category, els.minPrice, els.maxPrice].forEach(function (input) {
    input.addEventListener("change", function () {
      if (state.searched && hasPhoto()) {
        scheduleSearch();
      }
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var typed = els.url.value.trim();
    // A typed URL wins: choosing a file empties this field, so a URL here is what was meant last.
    if (typed && typed !== state.imageUrl) {
      useUrl(typed);
    }
    search();
  });

  // ---- searching ----------------------------------------------------------------------------
  function hasPhoto() {
    return Boolean(state.file || state.imageUrl);
  }

  function scheduleSearch() {
    window.clearTimeout(state.timer);
    state.timer = window.setTimeout(search, SEARCH_DELAY_MS);
  }

  function filters() {
    var fields = { k: String(RESULTS) };
    if (els.category.value) fields.category = els.category.value;
    if (els.minPrice.value) fields.min_price = els.minPrice.value;
    if (els.maxPrice.value) fields.max_price = els.maxPrice.value;
    if (els.cropInput.value) fields.crop = els.cropInput.value;
    return fields;
  }

  function buildRequest(fields) {
    var headers = { Accept: "application/json", "X-CSRFToken": form.elements.csrfmiddlewaretoken.value };
    if (state.file) {
      var body = new FormData();
      body.append("image", state.file, state.file.name || "photo");
      Object.keys(fields).forEach(function (key) { body.append(key, fields[key]); });
      return { method: "POST", headers: headers, body: body, credentials: "same-origin" };
    }
    headers["Content-Type"] = "application/json";
    fields.url = state.imageUrl;
    return { method: "POST", headers: headers, body: JSON.stringify(fields), credentials: "same-origin" };
  }

  function search() {
    window.clearTimeout(state.timer);
    if (!hasPhoto()) {
      showError("Choose a photo or enter an image URL to search with.");
      return;
    }
    if (state.request) {
      state.request.abort(); // only the newest search may paint the results
    }
    var controller = new AbortController();
    var options = buildRequest(filters());
    options.signal = controller.signal;
    state.request = controller;
    clearError();
    setBusy(true);
    fetch(apiUrl, options)
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          if (!response.ok) {
            throw new Error(errorMessage(response, data));
          }
          return data;
        });
      })
      .then(function (data) {
        state.searched = true;
        renderResults(data);
        updatePageUrl();
      })
      .catch(function (error) {
        if (error.name === "AbortError") {
          return;
        }
        els.results.hidden = true;
        showError(error instanceof TypeError ? "Could not reach the shop. Check your connection and try again." : error.message);
      })
      .finally(function () {
        if (state.request === controller) {
          state.request = null;
          setBusy(false);
        }
      });
  }

  function errorMessage(response, data) {
    if (data && typeof data.detail === "string") {
      return data.detail;
    }
    if (data && typeof data === "object") {
      var field = Object.keys(data)[0];
      var problem = [].concat(data[field])[0];
      if (field && problem) {
        return field.replace(/_/g, " ") + ": " + problem;
      }
    }
    if (response.status === 413) {
      return "This photo is too large.";
    }
    return "The search failed (HTTP " + response.status + "). Please try again.";
  }

  function setBusy(busy) {
    els.results.setAttribute("aria-busy", busy ? "true" : "false");
    els.status.classList.toggle("is-busy", busy);
    els.button.disabled = busy;
    if (busy) {
      els.statusText.textContent = "Searching…";
    }
  }

  // ---- results ------------------------------------------------------------------------------
  function renderResults(data) {
    var results = (data && data.results) || [];
    els.grid.textContent = "";
    results.forEach(function (result) {
      els.grid.appendChild(card(result));
    });
    var label = results.length + " product" + (results.length === 1 ? "" : "s");
    els.count.textContent = label;
    els.statusText.textContent = results.length ? "Found " + label + "." : "No matching products.";
    els.empty.hidden = results.length > 0;
    els.results.hidden = false;
    renderWarnings((data && data.warnings) || []);
  }

  function card(result) {
    var product = result.product;
    var node = els.template.content.firstElementChild.cloneNode(true);
    node.querySelector(".card__link").href = product.url;
    node.querySelector("img").src = product.thumbnail_url || "";
    node.querySelector(".card__name").textContent = product.name;
    node.querySelector(".card__price").textContent = product.price + " " + product.currency;
    node.querySelector(".card__category").textContent = product.category ? product.category.name : "Uncategorised";
    node.querySelector(".card__score").textContent = Math.round(clampScore(result.score) * 100) + "% match";
    return node;
  }

  function clampScore(score) {
    return Math.min(1, Math.max(0, Number(score) || 0));
  }

  function renderWarnings(warnings) {
    els.warnings.textContent = "";
    if (document.querySelector(".notices")) {
      return; // the API warns about the model, which the page's banner already explains
    }
    warnings.forEach(function (warning) {
      var p = document.createElement("p");
      p.className = "notice notice--info";
      p.textContent = typeof warning === "string" ? warning : warning.detail || warning.message || "";
      els.warnings.appendChild(p);
    });
  }

  function updatePageUrl() {
    var params = new URLSearchParams();
    if (state.imageUrl) {
      params.set("url", state.imageUrl);
    } else {
      params.set("photo", "upload"); // a reload says plainly that the file must be chosen again
    }
    var fields = filters();
    ["crop", "category", "min_price", "max_price"].forEach(function (key) {
      if (fields[key]) params.set(key, fields[key]);
    });
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
  }

  function showError(message) {
    els.error.textContent = message;
    els.error.hidden = false;
    els.statusText.textContent = "";
  }

  function clearError() {
    els.error.textContent = "";
    els.error.hidden = true;
  }

  function megabytes(bytes) {
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  // ---- a shared or reloaded search ----------------------------------------------------------
  var sharedUrl = pageParams.get("url");
  if (sharedUrl) {
    // The server already searched this URL and rendered the results (or its error): keep them.
    state.imageUrl = sharedUrl;
    showPreview(sharedUrl);
  }
})();
