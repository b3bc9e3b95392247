/* Product page: a thumbnail shows its photo in the main frame. Without this script each thumbnail
   is a plain link to the larger photo. */
(function () {
  "use strict";

  var main = document.querySelector(".product__main-photo");
  var thumbs = document.querySelectorAll(".product__thumbs a");
  if (!main || !thumbs.length) {
    return;
  }
  thumbs.forEach(function (thumb, index) {
    if (index === 0) {
      thumb.setAttribute("aria-current", "true");
    }
    thumb.addEventListener("click", function (event) {
      event.preventDefault();
      var img = main.querySelector("img");
      var source = main.querySelector("source");
      img.src = thumb.href;
      // The frame keeps the new photo's shape (width and height), and WebP browsers use its sizes.
      if (thumb.getAttribute("data-width") !== "0") {
        img.width = Number(thumb.getAttribute("data-width"));
        img.height = Number(thumb.getAttribute("data-height"));
      }
      if (source) {
        source.srcset = thumb.getAttribute("data-srcset");
      }
      main.href = thumb.getAttribute("data-original");
      thumbs.forEach(function (other) { other.removeAttribute("aria-current"); });
      thumb.setAttribute("aria-current", "true");
    });
  });
})();
