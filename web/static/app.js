// Copy buttons. They are rendered hidden and shown here, so a page without
// JavaScript never offers a button that does nothing; the value stays in a
// read-only field that can be selected by hand.
(function () {
  "use strict";

  function announce(button, message) {
    var field = button.closest(".copy-field");
    var status = field && field.querySelector(".copy-status");
    if (!status) {
      return;
    }
    status.textContent = message;
    clearTimeout(status.gatehouseTimer);
    status.gatehouseTimer = setTimeout(function () {
      status.textContent = "";
    }, 4000);
  }

  // Selecting the text leaves the user one keystroke from copying when the
  // Clipboard API is missing (it needs a secure context) or refuses.
  function selectForManualCopy(button, target) {
    target.focus();
    target.select();
    announce(button, "Selected. Press Ctrl+C (or ⌘C) to copy.");
  }

  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target || typeof target.select !== "function") {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      if (!navigator.clipboard || !window.isSecureContext) {
        selectForManualCopy(button, target);
        return;
      }
      navigator.clipboard.writeText(target.value).then(
        function () {
          announce(button, "Copied to clipboard.");
        },
        function () {
          selectForManualCopy(button, target);
        }
      );
    });
  });
})();

// Form post responses (OAuth 2.0 Form Post Response Mode) go on to the app at
// once; without JavaScript the form's own button does it.
(function () {
  "use strict";
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.submit();
  });
})();
