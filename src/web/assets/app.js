// Aseptic's one script. Every page works without it (forms post and the server answers with the
// next page); it adds the CSRF header to htmx's requests and a Scan button that uses the camera
// where the browser can read barcodes. A hand-held scanner needs nothing: it types the code into
// the focused field and presses Enter, which submits the form.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // After a partial update, put the focus back in the field the technician was scanning into.
  document.addEventListener("htmx:afterSettle", function () {
    var field = document.querySelector("[data-refocus]");
    if (field) {
      field.focus();
    }
  });

  var scanning = null;

  function stopScanning() {
    if (!scanning) {
      return;
    }
    scanning.stream.getTracks().forEach(function (t) { t.stop(); });
    scanning.dialog.close();
    scanning = null;
  }

  async function scanInto(input) {
    var dialog = document.getElementById("scan-dialog");
    var video = dialog.querySelector("video");
    var status = dialog.querySelector("[data-scan-status]");
    var formats = await window.BarcodeDetector.getSupportedFormats();
    var detector = new window.BarcodeDetector({ formats: formats });
    var stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    } catch (e) {
      status.textContent = "The camera could not be opened: " + e.message + ". Type the code instead.";
      dialog.showModal();
      return;
    }
    scanning = { stream: stream, dialog: dialog };
    video.srcObject = stream;
    status.textContent = "Hold the code in front of the camera.";
    dialog.showModal();
    await video.play();
    while (scanning) {
      try {
        var found = await detector.detect(video);
        if (found.length > 0) {
          input.value = found[0].rawValue;
          stopScanning();
          if (input.form) {
            input.form.requestSubmit();
          }
          return;
        }
      } catch (e) {
        status.textContent = "The camera stopped: " + e.message;
        return;
      }
      await new Promise(function (r) { setTimeout(r, 200); });
    }
  }

  function wireScanButtons(root) {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices) {
      return;
    }
    root.querySelectorAll("button[data-scan-for]").forEach(function (button) {
      if (button.dataset.wired) {
        return;
      }
      button.dataset.wired = "1";
      button.hidden = false;
      button.addEventListener("click", function () {
        var input = document.getElementById(button.getAttribute("data-scan-for"));
        if (input) {
          scanInto(input);
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireScanButtons(document);
    var dialog = document.getElementById("scan-dialog");
    if (dialog) {
      dialog.querySelector("[data-scan-cancel]").addEventListener("click", stopScanning);
      dialog.addEventListener("cancel", stopScanning);
    }
  });
  document.addEventListener("htmx:load", function (event) {
    wireScanButtons(event.target);
  });
})();
