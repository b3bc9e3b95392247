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
      main.querySelector("img").src = thumb.href;
      main.href = thumb.getAttribute("data-original");
      thumbs.forEach(function (other) { other.removeAttribute("aria-current"); });
      thumb.setAttribute("aria-current", "true");
    });
  });
})();
