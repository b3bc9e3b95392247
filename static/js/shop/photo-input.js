/* Choosing the photo. Owns the file picker #id_image, the camera #id_camera, the image URL field
   #id_url, dropping anywhere on the page (shown on #dropzone), pasting, #file-name, #reload-notice and
   the size limit (the form's data-max-bytes). It only reports what was chosen: onFile(file),
   onUrl(url, {typed}) (typed: from the URL field, rather than dropped or pasted), or
   onRejected(message) for something it cannot search with. */

function megabytes(bytes) {
  return (bytes / 1048576).toFixed(1) + " MB";
}

// The first image among the files; failing that the first file, which the server will judge.
function imageFile(files) {
  for (const file of files || []) {
    if (!file.type || file.type.startsWith("image/")) {
      return file;
    }
  }
  return files && files.length ? files[0] : null;
}

export function createPhotoInput(form, { onFile, onUrl, onRejected }) {
  const $ = (id) => document.getElementById(id);
  const fileInput = $("id_image");
  const cameraInput = $("id_camera");
  const urlField = $("id_url");
  const fileName = $("file-name");
  const dropzone = $("dropzone");
  const maxBytes = Number(form.getAttribute("data-max-bytes")) || 0;

  function useFile(file) {
    if (!file) {
      return;
    }
    if (maxBytes && file.size > maxBytes) {
      onRejected("This photo is " + megabytes(file.size) + "; photos can be at most " + megabytes(maxBytes) + ".");
      return;
    }
    urlField.value = "";
    fileName.textContent = "Chosen: " + (file.name || "pasted image");
    fileName.hidden = false;
    const reloadNotice = $("reload-notice");
    if (reloadNotice) {
      reloadNotice.hidden = true;
    }
    onFile(file);
  }

  function useUrl(url, { typed = false } = {}) {
    fileInput.value = "";
    cameraInput.value = "";
    fileName.hidden = true;
    onUrl(url, { typed });
  }

  fileInput.addEventListener("change", () => {
    cameraInput.value = "";
    useFile(fileInput.files[0]);
  });
  cameraInput.addEventListener("change", () => {
    fileInput.value = "";
    useFile(cameraInput.files[0]);
  });
  urlField.addEventListener("change", () => {
    const value = urlField.value.trim();
    if (value && urlField.checkValidity()) {
      useUrl(value, { typed: true });
    }
  });

  // Dropping anywhere on the page works; the drop zone shows where.
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropzone.classList.add("is-dragover");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) {
      dropzone.classList.remove("is-dragover");
    }
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("is-dragover");
    const data = event.dataTransfer;
    const file = imageFile(data.files);
    const link = (data.getData("text/uri-list") || data.getData("text/plain") || "").trim().split("\n")[0];
    if (file) {
      useFile(file);
    } else if (/^https?:\/\//i.test(link)) {
      urlField.value = link;
      useUrl(link);
    } else {
      onRejected("Drop a photo file or an image from another page.");
    }
  });

  document.addEventListener("paste", (event) => {
    const data = event.clipboardData;
    const file = data && imageFile(data.files);
    if (file) {
      event.preventDefault();
      useFile(file);
      return;
    }
    const text = data ? data.getData("text/plain").trim() : "";
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement;
    if (!typing && /^https?:\/\/\S+$/i.test(text)) {
      event.preventDefault();
      urlField.value = text;
      useUrl(text);
    }
  });

  return {
    /** What is typed in the URL field now (it may not have fired "change" yet). */
    typedUrl: () => urlField.value.trim(),
    useUrl,
  };
}
