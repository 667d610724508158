"""Forms for runs: a preview request from the editor."""

from __future__ import annotations

import json

from django import forms
from django.core import validators

from connections.forms import ConnectorCodeForm
from connector_engine.protocol import Action
from connectors_site.engine_config import preview_bounds

PREVIEW_ACTIONS = frozenset(Action)


class PreviewForm(ConnectorCodeForm):
    """A preview request: the editor's code plus which object, how many rows and objects at
    most, and the timeout (each within the server's bounds: engine_config.preview_bounds)."""

    # Bad parser options are the engine's to explain, in the preview (a ConfigurationError).
    check_parser_options = False

    object = forms.CharField(required=False, widget=forms.HiddenInput)
    limit = forms.IntegerField(min_value=1, required=False)
    object_limit = forms.IntegerField(min_value=1, required=False)
    timeout = forms.FloatField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The bounds are read per request: settings may differ between processes and tests.
        bounds = preview_bounds()
        self._bound("limit", bounds.max_row_limit, "rows")
        self._bound("object_limit", bounds.max_objects, "objects", "PREVIEW_MAX_OBJECTS")
        self._bound("timeout", bounds.timeout_s, "seconds", "PREVIEW_TIMEOUT_S")
        timeout = self.fields["timeout"]
        timeout.min_value = bounds.min_timeout_s
        timeout.validators.append(validators.MinValueValidator(bounds.min_timeout_s))

    def _bound(self, name: str, most: float, unit: str, setting: str = "") -> None:
        field = self.fields[name]
        field.max_value = most
        setting = f" ({setting})" if setting else ""
        message = f"At most {most:g} {unit}: the server's bound{setting}."
        field.validators.append(validators.MaxValueValidator(most, message=message))

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
