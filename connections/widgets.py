"""The CodeMirror 6 code editor as a Django form widget."""

from __future__ import annotations

from django import forms


class CodeEditorWidget(forms.Textarea):
    """A textarea that becomes a CodeMirror Python editor; the textarea still posts the code."""

    template_name = "connections/widgets/code_editor.html"

    def __init__(self, attrs: dict | None = None, *, lint: bool = False) -> None:
        defaults = {"rows": 20, "spellcheck": "false", "data-code-editor": "python"}
        if lint:
            defaults["data-lint"] = "contract"
        super().__init__(attrs={**defaults, **(attrs or {})})

    class Media:
        js = ["vendor/codemirror/codemirror.min.js", "js/code-editor-widget.js"]
