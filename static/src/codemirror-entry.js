/*! Connector Studio editor: CodeMirror 6 and Lezer (MIT, (c) Marijn Haverbeke and others); see LICENSES.txt and VERSIONS.txt next to this file. */
// Connector Studio's Python editor: CodeMirror 6 packaged behind one small global API.
//
// Built by `npm run build` into static/vendor/codemirror/codemirror.min.js (an IIFE, committed),
// which defines `window.ConnectorEditor`. Nothing here is loaded from a CDN and nothing is built at
// run time. Licences and exact versions are next to the bundle (LICENSES.txt, VERSIONS.txt). API:
//
//   const ed = ConnectorEditor.create(parentElement, {doc, onChange, onSave, onRun, lintSource,
//                                                      lintDelay, completions, readOnly, ...});
//   ed.getValue(); ed.setValue(text); ed.goToLine(line, column); ed.markLine(line, message);
//   ed.clearMarks(); ed.setDiagnostics([{line, column, message, severity}]); ed.lint();
//   ed.focus(); ed.destroy(); ed.view  // the EditorView, for tests
//
//   ConnectorEditor.fromTextarea(textarea, options)  // same handle; keeps the textarea in sync

import {
  autocompletion,
  closeBrackets,
  closeBracketsKeymap,
  completionKeymap,
  snippetCompletion,
} from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { pythonLanguage, python } from "@codemirror/lang-python";
import {
  bracketMatching,
  defaultHighlightStyle,
  indentOnInput,
  indentUnit,
  syntaxHighlighting,
  syntaxTree,
} from "@codemirror/language";
import {
  forceLinting,
  forEachDiagnostic,
  lintGutter,
  lintKeymap,
  linter,
  setDiagnostics,
} from "@codemirror/lint";
import { highlightSelectionMatches, search, searchKeymap } from "@codemirror/search";
import {
  Annotation,
  Compartment,
  EditorSelection,
  EditorState,
  Prec,
  RangeSet,
  StateEffect,
  StateField,
} from "@codemirror/state";
import {
  Decoration,
  EditorView,
  GutterMarker,
  drawSelection,
  dropCursor,
  gutterLineClass,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";

const DEFAULT_LINT_DELAY = 400;

// ---------------------------------------------------------------------------------------------
// Completions: the connector contract's names (DESIGN.md §1) and the metadata keys.

const CONTRACT_FUNCTIONS = [
  ["context", "credentials", "Build the shared context from the connection's credentials (optional)."],
  ["list_objects", "context, metadata", "Yield the objects (partitions) to read: {name, fingerprint, is_prefix}."],
  ["read_pandas_dataframe", "context, metadata", "Read one object into a pandas DataFrame (pandas interface)."],
  ["read_spark_dataframe", "spark, context, metadata", "Read one object into a Spark DataFrame (spark interface)."],
  ["read_bytes", "context, metadata", "Return one object's bytes, parsed by the connector's parser (bytes interface)."],
  ["infer_schema", "context, metadata", "Return the schema of the data (optional; may also take spark, credentials)."],
];

const METADATA_KEYS = [
  ["name", "Object name; unique within its prefix"],
  ["fingerprint", "Changes when the object's content changes (drives incremental reads)"],
  ["is_prefix", "True for a folder-like prefix that expands into more objects"],
];

function contractCompletions() {
  const out = [];
  for (const [name, params, info] of CONTRACT_FUNCTIONS) {
    out.push({ label: name, type: "function", detail: `(${params})`, info, boost: 2 });
    out.push(
      snippetCompletion(`def ${name}(${params}):\n\t\${}`, {
        label: `def ${name}`,
        type: "keyword",
        detail: "contract function",
        info,
        boost: 1,
      }),
    );
  }
  for (const name of ["credentials", "metadata", "spark"]) {
    out.push({ label: name, type: "variable", detail: "contract parameter" });
  }
  return out;
}

function normaliseCompletions(list) {
  return (list || []).map((item) => (typeof item === "string" ? { label: item, type: "text" } : item));
}

const IN_STRING_NODES = new Set(["String", "FormatString"]);
// A string literal in a position where a metadata key is likely: metadata["…"], {"…": …},
// metadata.get("…"), or after a comma in a dict literal.
const KEY_POSITION = /(?:\[|\{|,|\.get\(|\.pop\(|\.setdefault\()\s*[rbuRBU]?$/;

function makeCompletionSource(extra) {
  const names = contractCompletions().concat(normaliseCompletions(extra));
  const keys = METADATA_KEYS.map(([label, info]) => ({ label, type: "property", detail: "metadata key", info }));
  return (ctx) => {
    const node = syntaxTree(ctx.state).resolveInner(ctx.pos, -1);
    if (IN_STRING_NODES.has(node.name)) {
      const quote = ctx.state.sliceDoc(node.from, ctx.pos).search(/["']/);
      if (quote < 0) return null;
      const contentFrom = node.from + quote + 1;
      const before = ctx.state.sliceDoc(Math.max(0, node.from - 40), node.from + quote);
      const typed = ctx.state.sliceDoc(contentFrom, ctx.pos);
      if (!KEY_POSITION.test(before) || !/^\w*$/.test(typed)) return null;
      return { from: contentFrom, options: keys, validFor: /^\w*$/ };
    }
    if (node.name === "Comment") return null;
    const word = ctx.matchBefore(/\w+/);
    if (!word && !ctx.explicit) return null;
    // After a dot only attribute names make sense; leave those to the Python sources.
    const start = word ? word.from : ctx.pos;
    if (/\.\s*$/.test(ctx.state.sliceDoc(Math.max(0, start - 20), start))) return null;
    return { from: word ? word.from : ctx.pos, options: names, validFor: /^\w*$/ };
  };
}

// ---------------------------------------------------------------------------------------------
// Diagnostics: server positions are 1-based lines and columns.

const SEVERITIES = { error: "error", warning: "warning", warn: "warning", info: "info", information: "info", hint: "hint" };

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

function lineAt(doc, line) {
  const n = Number.isFinite(+line) ? Math.trunc(+line) : 1;
  return doc.line(clamp(n, 1, doc.lines));
}

function posAt(doc, line, column) {
  const l = lineAt(doc, line);
  const col = Number.isFinite(+column) && +column >= 1 ? Math.trunc(+column) : 1;
  return l.from + clamp(col - 1, 0, l.length);
}

function toCodeMirrorDiagnostic(doc, d) {
  const from = posAt(doc, d.line, d.column);
  let to;
  if (d.endLine != null || d.end_line != null) {
    to = posAt(doc, d.endLine ?? d.end_line, d.endColumn ?? d.end_column ?? 1);
  } else {
    // Underline the word at the position (or one character); nothing past the end of the line.
    const line = doc.lineAt(from);
    const rest = doc.sliceString(from, line.to);
    const word = /^\w+/.exec(rest);
    to = from + (word ? word[0].length : Math.min(1, rest.length));
  }
  return {
    from,
    to: Math.max(from, to),
    severity: SEVERITIES[String(d.severity || "error").toLowerCase()] || "error",
    message: String(d.message ?? ""),
    source: d.source || undefined,
  };
}

function currentDiagnostics(state) {
  const found = [];
  forEachDiagnostic(state, (d, from, to) => found.push({ ...d, from, to }));
  return found;
}

// ---------------------------------------------------------------------------------------------
// Marked (error) lines: a line decoration plus a class on that line's gutter cells.

// handle.lint(): lint again although the text did not change (the interface did).
const relintEffect = StateEffect.define();
const addMark = StateEffect.define({ map: (value, mapping) => ({ ...value, pos: mapping.mapPos(value.pos) }) });
const clearMarksEffect = StateEffect.define();

const errorLineMarker = new (class extends GutterMarker {
  constructor() {
    super();
    this.elementClass = "cm-ce-errorGutter";
  }
})();

const markedLines = StateField.define({
  create: () => Decoration.none,
  update(marks, tr) {
    marks = marks.map(tr.changes);
    for (const effect of tr.effects) {
      if (effect.is(clearMarksEffect)) marks = Decoration.none;
      else if (effect.is(addMark)) {
        const line = tr.state.doc.lineAt(effect.value.pos);
        const attributes = effect.value.message ? { title: effect.value.message } : undefined;
        const deco = Decoration.line({ class: "cm-ce-errorLine", attributes });
        marks = marks.update({ add: [deco.range(line.from)], sort: true });
      }
    }
    return marks;
  },
  provide: (field) => [
    EditorView.decorations.from(field),
    gutterLineClass.compute([field], (state) => {
      const ranges = [];
      state.field(field).between(0, state.doc.length, (from) => {
        ranges.push(errorLineMarker.range(from));
      });
      return RangeSet.of(ranges, true);
    }),
  ],
});

// ---------------------------------------------------------------------------------------------
// Theme: light, Bootstrap 5 friendly (uses Bootstrap's CSS variables when present).

function editorTheme({ minHeight, maxHeight }) {
  return EditorView.theme(
    {
      "&": {
        border: "var(--bs-border-width, 1px) solid var(--bs-border-color, #dee2e6)",
        borderRadius: "var(--bs-border-radius, 0.375rem)",
        backgroundColor: "var(--bs-body-bg, #fff)",
        color: "var(--bs-body-color, #212529)",
        fontSize: "0.875rem",
        maxHeight,
      },
      "&.cm-focused": {
        outline: "none",
        borderColor: "#86b7fe",
        boxShadow: "0 0 0 0.25rem rgba(13, 110, 253, 0.25)",
      },
      ".cm-scroller": {
        fontFamily:
          'var(--bs-font-monospace, SFMono-Regular, Menlo, Monaco, Consolas, "Liberation Mono", "Courier New", monospace)',
        lineHeight: "1.5",
        overflow: "auto",
      },
      ".cm-content, .cm-gutter": { minHeight },
      ".cm-content": { padding: "0.375rem 0" },
      ".cm-gutters": {
        backgroundColor: "var(--bs-tertiary-bg, #f8f9fa)",
        color: "var(--bs-secondary-color, #6c757d)",
        borderRight: "var(--bs-border-width, 1px) solid var(--bs-border-color, #dee2e6)",
        borderTopLeftRadius: "var(--bs-border-radius, 0.375rem)",
        borderBottomLeftRadius: "var(--bs-border-radius, 0.375rem)",
      },
      ".cm-activeLine": { backgroundColor: "rgba(13, 110, 253, 0.05)" },
      ".cm-activeLineGutter": { backgroundColor: "rgba(13, 110, 253, 0.1)", color: "var(--bs-body-color, #212529)" },
      ".cm-ce-errorLine": { backgroundColor: "rgba(220, 53, 69, 0.12)" },
      ".cm-ce-errorGutter": { backgroundColor: "rgba(220, 53, 69, 0.25)", color: "#842029", fontWeight: "600" },
      ".cm-tooltip": {
        border: "var(--bs-border-width, 1px) solid var(--bs-border-color, #dee2e6)",
        borderRadius: "var(--bs-border-radius-sm, 0.25rem)",
        boxShadow: "0 0.125rem 0.25rem rgba(0, 0, 0, 0.075)",
      },
      ".cm-tooltip-lint": { fontFamily: "var(--bs-body-font-family, system-ui, sans-serif)" },
      ".cm-panels": { fontFamily: "var(--bs-body-font-family, system-ui, sans-serif)", fontSize: "0.875rem" },
      ".cm-panels.cm-panels-top": { borderBottom: "var(--bs-border-width, 1px) solid var(--bs-border-color, #dee2e6)" },
      ".cm-panels.cm-panels-bottom": { borderTop: "var(--bs-border-width, 1px) solid var(--bs-border-color, #dee2e6)" },
    },
    { dark: false },
  );
}

// ---------------------------------------------------------------------------------------------
// The editor.

const fromSetValue = Annotation.define();

function create(parent, options = {}) {
  if (!parent || !parent.appendChild) throw new TypeError("ConnectorEditor.create: parent must be a DOM element");
  const {
    doc = "",
    onChange = null,
    onSave = null,
    onRun = null,
    lintSource = null,
    lintDelay = DEFAULT_LINT_DELAY,
    completions = [],
    readOnly = false,
    minHeight = "28rem",
    maxHeight = "70vh",
    ariaLabel = "Python code",
  } = options;

  let handle = null;
  const readOnlyCompartment = new Compartment();

  const runKeys = [];
  if (onSave) {
    runKeys.push({ key: "Mod-s", preventDefault: true, run: () => (onSave(handle.getValue(), handle), true) });
  }
  if (onRun) {
    runKeys.push({ key: "Mod-Enter", preventDefault: true, run: () => (onRun(handle.getValue(), handle), true) });
  }

  let lintAbort = null;
  const lintExtensions = [lintGutter()];
  if (typeof lintSource === "function") {
    lintExtensions.push(
      linter(
        async (view) => {
          if (lintAbort) lintAbort.abort();
          const controller = typeof AbortController === "function" ? new AbortController() : null;
          lintAbort = controller;
          const state = view.state;
          try {
            const problems = await lintSource(state.doc.toString(), { signal: controller && controller.signal });
            return (problems || []).map((p) => toCodeMirrorDiagnostic(state.doc, p));
          } catch (error) {
            if (!(controller && controller.signal.aborted)) console.warn("ConnectorEditor: lint failed", error);
            return currentDiagnostics(view.state); // keep what is shown
          } finally {
            if (lintAbort === controller) lintAbort = null;
          }
        },
        // A relint effect (handle.lint()) schedules a lint as a document change would:
        // forceLinting alone only hurries one that is already pending.
        { delay: lintDelay, needsRefresh: (update) => update.transactions.some((tr) => tr.effects.some((e) => e.is(relintEffect))) },
      ),
    );
  }

  const extensions = [
    Prec.highest(keymap.of(runKeys)),
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightSpecialChars(),
    history(),
    drawSelection(),
    dropCursor(),
    EditorState.allowMultipleSelections.of(true),
    EditorState.tabSize.of(4),
    indentUnit.of("    "),
    indentOnInput(),
    syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
    bracketMatching(),
    closeBrackets(),
    autocompletion(),
    highlightActiveLine(),
    EditorView.lineWrapping, // long lines wrap beside a results panel instead of scrolling away
    highlightSelectionMatches(),
    search({ top: true }),
    python(),
    pythonLanguage.data.of({ autocomplete: makeCompletionSource(completions) }),
    lintExtensions,
    markedLines,
    readOnlyCompartment.of([EditorState.readOnly.of(!!readOnly), EditorView.editable.of(!readOnly)]),
    keymap.of([
      ...closeBracketsKeymap,
      ...defaultKeymap,
      ...searchKeymap,
      ...historyKeymap,
      ...completionKeymap,
      ...lintKeymap,
      indentWithTab,
    ]),
    editorTheme({ minHeight, maxHeight }),
    EditorView.contentAttributes.of({ "aria-label": ariaLabel }),
    EditorView.editorAttributes.of({ class: "connector-editor" }),
    EditorView.updateListener.of((update) => {
      if (!update.docChanged) return;
      if (handle && handle._sync) handle._sync(update.state.doc.toString());
      const programmatic = update.transactions.some((tr) => tr.annotation(fromSetValue));
      if (onChange && !programmatic) onChange(update.state.doc.toString(), handle);
    }),
  ];

  const view = new EditorView({ parent, state: EditorState.create({ doc: String(doc ?? ""), extensions }) });

  handle = {
    view,
    getValue: () => view.state.doc.toString(),
    setValue(text) {
      const value = String(text ?? "");
      if (value === view.state.doc.toString()) return;
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: value },
        selection: EditorSelection.cursor(Math.min(view.state.selection.main.head, value.length)),
        annotations: fromSetValue.of(true),
      });
    },
    goToLine(line, column) {
      const pos = posAt(view.state.doc, line, column);
      view.dispatch({
        selection: EditorSelection.cursor(pos),
        effects: EditorView.scrollIntoView(pos, { y: "center" }),
      });
      view.focus();
      return view.state.doc.lineAt(pos).number;
    },
    markLine(line, message) {
      const pos = lineAt(view.state.doc, line).from;
      view.dispatch({ effects: addMark.of({ pos, message: message ? String(message) : "" }) });
    },
    clearMarks() {
      view.dispatch({ effects: clearMarksEffect.of(null) });
    },
    setDiagnostics(problems) {
      const doc = view.state.doc;
      view.dispatch(setDiagnostics(view.state, (problems || []).map((p) => toCodeMirrorDiagnostic(doc, p))));
    },
    lint() {
      // Lint now although the text did not change (the interface did): schedule, then hurry.
      view.dispatch({ effects: relintEffect.of(null) });
      forceLinting(view);
    },
    setReadOnly(flag) {
      view.dispatch({
        effects: readOnlyCompartment.reconfigure([EditorState.readOnly.of(!!flag), EditorView.editable.of(!flag)]),
      });
    },
    focus() {
      view.focus();
    },
    destroy() {
      if (lintAbort) lintAbort.abort();
      view.destroy();
    },
  };
  return handle;
}

// Replace a <textarea> (e.g. a Django form field) with an editor; the textarea stays in the form,
// hidden, and always holds the editor's text, so a normal form submit posts the code.
function fromTextarea(textarea, options = {}) {
  if (!textarea || textarea.tagName !== "TEXTAREA") throw new TypeError("ConnectorEditor.fromTextarea: need a <textarea>");
  const wrapper = document.createElement("div");
  wrapper.className = "connector-editor-wrapper";
  textarea.parentNode.insertBefore(wrapper, textarea.nextSibling);
  textarea.style.display = "none";
  const label = textarea.id && document.querySelector(`label[for="${CSS.escape(textarea.id)}"]`);
  const handle = create(wrapper, {
    doc: textarea.value,
    readOnly: textarea.readOnly || textarea.disabled,
    ariaLabel: (label && label.textContent.trim()) || textarea.getAttribute("aria-label") || "Python code",
    ...options,
  });
  handle._sync = (value) => {
    textarea.value = value;
  };
  handle.textarea = textarea;
  const destroy = handle.destroy;
  handle.destroy = () => {
    destroy();
    wrapper.remove();
    textarea.style.display = "";
  };
  return handle;
}

const ConnectorEditor = {
  create,
  fromTextarea,
  contractNames: CONTRACT_FUNCTIONS.map(([name]) => name),
  metadataKeys: METADATA_KEYS.map(([name]) => name),
};

if (typeof window !== "undefined") window.ConnectorEditor = ConnectorEditor;
