"""The csv parser's options in the editor: its inputs, and the options they say.

A connector stores only the options that differ from the parser's defaults
(connector_engine.parsers.CsvOptions), so an untouched connector keeps {}. Null values are typed
comma-separated ("NA, NULL"), with a checkbox for the empty field (null by default, as pandas and
Spark read it); a tab delimiter is typed as \\t.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django import forms

from connector_engine.parsers import CsvOptions

_SMALL_TEXT = {
    "class": "form-control form-control-sm",
    "autocomplete": "off",
    "spellcheck": "false",
}
CSV_DEFAULTS = CsvOptions()
TAB_TEXT = "\\t"  # how a tab delimiter is typed and shown: a tab cannot be typed in an input


def csv_option_inputs(options: dict[str, Any]) -> dict[str, Any]:
    """The editor's csv inputs showing a connector's csv options (defaults where unset)."""
    chosen = {
        f.name: options.get(f.name, getattr(CSV_DEFAULTS, f.name)) for f in fields(CsvOptions)
    }
    nulls = chosen["null_values"]
    nulls = list(nulls) if isinstance(nulls, list | tuple) else []
    return {
        "csv_delimiter": TAB_TEXT if chosen["delimiter"] == "\t" else chosen["delimiter"],
        "csv_quote": chosen["quote"],
        "csv_header": chosen["header"],
        "csv_encoding": chosen["encoding"],
        "csv_empty_is_null": "" in nulls,
        "csv_null_values": ", ".join(str(value) for value in nulls if value != ""),
        "csv_skip_rows": chosen["skip_rows"],
    }


def csv_options_from_inputs(cleaned: dict[str, Any]) -> dict[str, Any]:
    """The csv options the editor's inputs say, keeping only those that differ from the
    defaults (an untouched connector keeps {}). Unchecked: the engine checks them."""
    delimiter = cleaned.get("csv_delimiter", "")
    others = [value.strip() for value in cleaned.get("csv_null_values", "").split(",")]
    skip_rows = cleaned.get("csv_skip_rows")
    chosen = {
        "delimiter": "\t" if delimiter == TAB_TEXT else delimiter,
        "quote": cleaned.get("csv_quote", ""),
        "header": bool(cleaned.get("csv_header")),
        "encoding": cleaned.get("csv_encoding") or CSV_DEFAULTS.encoding,
        "null_values": [""] * bool(cleaned.get("csv_empty_is_null")) + [v for v in others if v],
        "skip_rows": CSV_DEFAULTS.skip_rows if skip_rows is None else skip_rows,
    }
    defaults = {name: getattr(CSV_DEFAULTS, name) for name in chosen}
    defaults["null_values"] = list(CSV_DEFAULTS.null_values)
    return {name: value for name, value in chosen.items() if value != defaults[name]}


class CsvOptionFields(forms.Form):
    """The csv parser's inputs, shared by the editor's save and preview forms."""

    csv_delimiter = forms.CharField(
        required=False,
        strip=False,
        label="Delimiter",
        widget=forms.TextInput(attrs=_SMALL_TEXT),
        help_text=f"One character; {TAB_TEXT} for a tab.",
    )
    csv_quote = forms.CharField(
        required=False,
        strip=False,
        label="Quote",
        widget=forms.TextInput(attrs=_SMALL_TEXT),
        help_text="Blank: quotes are ordinary characters.",
    )
    csv_encoding = forms.CharField(
        required=False, label="Encoding", widget=forms.TextInput(attrs=_SMALL_TEXT)
    )
    csv_skip_rows = forms.IntegerField(
        required=False,
        label="Rows to skip",
        widget=forms.NumberInput(attrs={**_SMALL_TEXT, "min": 0}),
        help_text="Lines before the header.",
    )
    csv_header = forms.BooleanField(
        required=False,
        label="Header row",
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )
    csv_empty_is_null = forms.BooleanField(
        required=False,
        label="Empty fields are null",
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )
    csv_null_values = forms.CharField(
        required=False,
        strip=False,
        label="Other null values",
        widget=forms.TextInput(attrs={**_SMALL_TEXT, "placeholder": "NA, NULL"}),
        help_text="Comma-separated; spaces around each are ignored.",
    )

    @property
    def csv_option_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("csv_")]
