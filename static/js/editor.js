// The connector editor page: CodeMirror, save, lint, previews, the object tree and error links.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("editor-config").textContent);
  const form = document.getElementById("editor-form");
  const textarea = form.querySelector("textarea[name=code]");
  const objectInput = document.getElementById("id_object");
  const panels = document.querySelectorAll(".result-panel");
  const dirtyFlag = document.getElementById("dirty-flag");
  const saveMessage = document.getElementById("save-message");
  const selectedObject = document.getElementById("selected-object");
  const readButton = document.getElementById("read-button");
  const parserField = document.getElementById("parser-field");
  const csvOptions = document.getElementById("csv-options");
  const csvInputs = Array.from(csvOptions.querySelectorAll("input"));
  let lastPreviewButton = null;

  // --- what is saved, and whether the editor differs from it ---------------------------------
  function snapshot() {
    const values = ["code", "interface", "parser", "packages"].map((name) => form.elements[name].value);
    csvInputs.forEach((input) => values.push(input.type === "checkbox" ? String(input.checked) : input.value));
    return values.join("\u0000");
  }
  let savedSnapshot = null; // set once the editor exists

  function updateDirty() {
    dirtyFlag.hidden = snapshot() === savedSnapshot;
  }

  window.addEventListener("beforeunload", function (event) {
    if (snapshot() !== savedSnapshot) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // --- saving -------------------------------------------------------------------------------
  async function save() {
    saveMessage.textContent = "Saving…";
    const response = await fetch(config.saveUrl, {method: "POST", body: new FormData(form)});
    const data = await response.json().catch(() => ({}));
    if (!response.ok || !data.saved) {
      const errors = data.errors ? Object.values(data.errors).flat().map((e) => e.message) : [];
      saveMessage.textContent = "Not saved: " + (errors.join(" ") || response.statusText);
      return;
    }
    savedSnapshot = snapshot();
    updateDirty();
    saveMessage.textContent = data.message;
    if (data.version) document.getElementById("version-label").textContent = "v" + data.version;
  }

  form.addEventListener("submit", function (event) {
    if (event.submitter && event.submitter.id === "ingest-button") {
      // An ingest runs the saved code: refuse to start one that would silently ignore edits.
      if (snapshot() !== savedSnapshot) {
        event.preventDefault();
        saveMessage.textContent = "Save first (Ctrl/Cmd-S): ingests run the saved code.";
      }
      return;
    }
    event.preventDefault();
    save();
  });

  // --- the lint gutter: the server's static contract check, as you type ----------------------
  async function lintSource(code, {signal}) {
    const body = new FormData();
    body.append("code", code);
    body.append("interface", form.elements.interface.value);
    body.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    const response = await fetch(config.checkUrl, {method: "POST", body, signal});
    if (!response.ok) throw new Error("check failed: " + response.status);
    return (await response.json()).problems;
  }

  // --- previews -------------------------------------------------------------------------------
  function repeatLastPreview() {
    if (lastPreviewButton) htmx.trigger(lastPreviewButton, "click");
  }

  document.querySelectorAll(".preview-button").forEach(function (button) {
    button.addEventListener("click", function () {
      lastPreviewButton = button;
    });
  });

  function selectObject(meta) {
    objectInput.value = meta ? JSON.stringify(meta) : "";
    selectedObject.hidden = !meta;
    selectedObject.querySelector("code").textContent = meta ? meta.name : "";
  }

  document.getElementById("clear-object").addEventListener("click", function (event) {
    event.preventDefault();
    selectObject(null);
  });

  function formValues() {
    const values = {};
    new FormData(form).forEach((value, name) => (values[name] = value));
    return values;
  }

  // The object tree: a leaf previews that partition; a prefix lists its children once, lazily.
  function onPanelClick(event) {
    const leaf = event.target.closest(".tree-leaf");
    const prefix = event.target.closest(".tree-prefix");
    const lineLink = event.target.closest(".line-link");
    if (leaf) {
      event.preventDefault();
      selectObject(JSON.parse(leaf.dataset.meta));
      lastPreviewButton = readButton;
      htmx.trigger(readButton, "click");
    } else if (prefix) {
      event.preventDefault();
      const children = prefix.parentElement.querySelector(":scope > .tree-children");
      if (children.dataset.loaded) {
        children.hidden = !children.hidden;
        prefix.setAttribute("aria-expanded", String(!children.hidden));
        return;
      }
      children.hidden = false;
      prefix.setAttribute("aria-expanded", "true");
      children.innerHTML = '<li class="small text-body-secondary">listing…</li>';
      children.dataset.loaded = "1";
      if (prefix.dataset.childrenUrl) {
        // The listing stored every child of this prefix: page them from the run, run nothing.
        htmx.ajax("GET", prefix.dataset.childrenUrl, {target: children, swap: "innerHTML"});
        return;
      }
      htmx.ajax("POST", config.listUrl, {
        target: children,
        swap: "innerHTML",
        values: {...formValues(), object: prefix.dataset.meta},
      });
    } else if (lineLink) {
      event.preventDefault();
      const line = Number(lineLink.dataset.line);
      editor.goToLine(line);
      editor.clearMarks();
      editor.markLine(line, "error here");
    }
  }

  // After each preview: mark the failing line of the user's code in the gutter.
  function onPanelSwap(event) {
    if (!event.target.classList.contains("result-panel")) return; // a tree expansion
    editor.clearMarks();
    const result = event.target.querySelector(".preview-result[data-error-line]");
    if (result) editor.markLine(Number(result.dataset.errorLine), "the error came from here");
  }

  panels.forEach(function (panel) {
    panel.addEventListener("click", onPanelClick);
    panel.addEventListener("htmx:afterSwap", onPanelSwap);
  });

  // --- interface, parser and its options --------------------------------------------------------
  // The csv options are sent with every preview and save (hidden or not); the server keeps
  // them only while the parser is csv.
  function showParser() {
    const bytes = form.elements.interface.value === "bytes";
    parserField.hidden = !bytes;
    csvOptions.hidden = !(bytes && form.elements.parser.value === "csv");
  }
  form.elements.interface.addEventListener("change", function () {
    showParser();
    updateDirty();
    editor.lint();
  });
  form.elements.parser.addEventListener("change", function () {
    showParser();
    updateDirty();
  });
  form.elements.packages.addEventListener("input", updateDirty);
  csvInputs.forEach((input) => input.addEventListener(input.type === "checkbox" ? "change" : "input", updateDirty));
  showParser();

  // --- the editor itself ------------------------------------------------------------------------
  const editor = window.ConnectorEditor.fromTextarea(textarea, {
    lintSource: lintSource,
    onChange: updateDirty,
    onSave: save,
    onRun: repeatLastPreview,
    ariaLabel: "Connector code",
  });
  window.connectorEditor = editor; // for tests and the browser console
  savedSnapshot = snapshot();

  // Ctrl/Cmd-S and Ctrl/Cmd-Enter also work outside the editor.
  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || event.target.closest(".cm-editor")) return;
    if (event.key === "s") {
      event.preventDefault();
      save();
    } else if (event.key === "Enter") {
      event.preventDefault();
      repeatLastPreview();
    }
  });
})();
