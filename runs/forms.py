"""Forms for runs: a preview request from the editor."""

from __future__ import annotations

import json

from django import forms

from connections.forms import ConnectorCodeForm
from connector_engine.protocol import Action

PREVIEW_ACTIONS = frozenset(Action)


class PreviewForm(ConnectorCodeForm):
    """A preview request: the editor's code plus which object and how many rows."""

    # Bad parser options are the engine's to explain, in the preview (a ConfigurationError).
    check_parser_options = False

    object = forms.CharField(required=False, widget=forms.HiddenInput)
    limit = forms.IntegerField(min_value=1, max_value=10_000, required=False, initial=100)

    def clean_object(self) -> dict | None:
        raw = self.cleaned_data.get("object")
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise forms.ValidationError("The object is not valid JSON.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The object must be a JSON object.")
        return value
