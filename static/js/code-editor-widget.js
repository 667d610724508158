// Turn each <textarea data-code-editor> into a CodeMirror editor (the textarea keeps the value).
// Editors with a page of their own (data-lint) are set up by that page's script instead.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea[data-code-editor]:not([data-lint])").forEach(function (area) {
      area.codeEditor = window.ConnectorEditor.fromTextarea(area, {minHeight: "12rem"});
    });
  });
})();
