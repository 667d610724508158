"""Forms for connections and connectors; secret credential values are write-only everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.forms import BoundField

from connections import export_format
from connections.export_format import ConnectorExport
from connections.models import (
    Connection,
    Interface,
    Parser,
    parser_options_problem,
    validate_requirements,
)
from connections.parser_options import (
    CsvOptionFields,
    csv_option_inputs,
    csv_options_from_inputs,
)
from connections.selectors import StoredCredentials, stored_credentials
from connections.services import CredentialFieldChange, credential_value
from connections.templates_gallery import STARTERS
from connections.widgets import CodeEditorWidget
from connector_engine.credentials import CredentialField

MAX_UPLOAD_BYTES = 1_000_000  # an export file: a header and one module of code

# Empty rows under a connection's credential fields, to add fields (more: save and edit again,
# or replace all the credentials at once).
NEW_CREDENTIAL_ROWS = 2
NEW_FIELD_SECRET_CHOICES = [
    ("", "Secret if its name says so"),
    ("yes", "Secret"),
    ("no", "Not secret"),
]
ROW_INPUT_PREFIX = "field-"
_TEXT = forms.TextInput(attrs={"class": "form-control form-control-sm"})
_CHECK = forms.CheckboxInput(attrs={"class": "form-check-input"})


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, not even what was typed before a form error."""

    def __init__(self, attrs: dict | None = None) -> None:
        # No spellchecking: some browsers send what is typed to a spelling service.
        defaults = {"rows": 2, "autocomplete": "off", "spellcheck": "false"}
        super().__init__(attrs={**defaults, **(attrs or {})})

    def format_value(self, value) -> None:
        return None


class CredentialsField(forms.CharField):
    """A write-only credentials input: never renders the stored value; blank keeps it."""

    widget = WriteOnlyTextarea(attrs={"rows": 3})

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("label", "Replace all credentials")
        super().__init__(**kwargs)


class CredentialValueField(forms.CharField):
    """One credential field's value, multi-line, kept as typed (browsers send line breaks as
    CRLF: they become LF)."""

    def __init__(self, *, write_only: bool, placeholder: str = "", **kwargs) -> None:
        attrs = {"rows": 2, "class": "form-control form-control-sm", "placeholder": placeholder}
        widget = WriteOnlyTextarea(attrs) if write_only else forms.Textarea(attrs)
        super().__init__(required=False, strip=False, widget=widget, **kwargs)

    def to_python(self, value) -> str:
        return super().to_python(value).replace("\r\n", "\n")


@dataclass(frozen=True)
class CredentialRow:
    """The inputs of one credential field, for templates: a stored field or a new one."""

    name: BoundField
    value: BoundField
    secret: BoundField
    remove: BoundField | None


def describe_credentials(connection: Connection | None) -> str:
    """Help text saying whether credentials are set, never what they are."""
    status = connection.credentials_status if connection and connection.pk else "not set"
    return (
        f"Currently: {status}. Write-only: the stored value is never shown. Leave blank to keep "
        "it. A JSON object (each key is a field) or one plain secret value; your connector's "
        "context(credentials) gets this text as it is."
    )


def credential_row_inputs(stored: StoredCredentials) -> list[tuple[str, ...]]:
    """The input names of each credential field row: one per stored field, then the new rows."""
    if stored.kind == "unreadable":
        return []  # only replacing or removing them all is possible
    existing = len(stored.fields)
    rows = [_row_inputs(number, remove=True) for number in range(existing)]
    new = range(existing, existing + NEW_CREDENTIAL_ROWS)
    return rows + [_row_inputs(number, remove=False) for number in new]


def credential_rows_help(stored: StoredCredentials) -> str:
    """What the credential field rows do, for the app's form and the admin."""
    text = (
        "Secret values are write-only: type a new value to replace one, leave it blank to keep "
        "it. Values of fields that are not secret are shown to everyone who sees the connection. "
        "A new field's value is text; a field holding another JSON type (a number, an object) "
        "takes JSON and keeps its type. A new field is secret when its name says so (password, "
        "token, key, secret, ...) unless you choose otherwise. Remove deletes a field."
    )
    if stored.kind == "text":
        text = (
            "The credentials are one plain secret value. Adding fields replaces it: the plain "
            "value is dropped. " + text
        )
    return text


def credentials_version(connection: Connection) -> str:
    """When the credentials last changed, to notice a change made while a form was open."""
    changed = connection.credentials_changed_at
    return changed.isoformat() if changed else ""


def _row_value_input(name: str) -> str:
    """The value input of the row that input `name` is in."""
    return name.rsplit("-", 1)[0] + "-value"


def _row_inputs(number: int, *, remove: bool) -> tuple[str, ...]:
    parts = ("name", "value", "secret", "remove") if remove else ("name", "value", "secret")
    return tuple(f"{ROW_INPUT_PREFIX}{number}-{part}" for part in parts)


class CredentialsChangeForm(forms.ModelForm):
    """A connection form whose credentials change field by field, all at once, or are removed.

    One row of inputs per stored field (name, value, secret, remove) and a few empty rows to add
    fields. Secret values are never rendered; values of fields that are not secret are.
    """

    credentials = CredentialsField()
    clear_credentials = forms.BooleanField(required=False, label="Remove stored credentials")
    credentials_version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, allow_credentials: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stored_credentials = StoredCredentials("none")
        self._field_changes: list[CredentialFieldChange] = []
        if not allow_credentials:
            for name in ("credentials", "clear_credentials", "credentials_version"):
                del self.fields[name]
            return
        self.stored_credentials = stored_credentials(self.instance)
        self.fields["credentials"].help_text = describe_credentials(self.instance)
        self.fields["credentials_version"].initial = credentials_version(self.instance)
        self._add_credential_rows()

    def _add_credential_rows(self) -> None:
        rows = credential_row_inputs(self.stored_credentials)
        for inputs, stored in zip(rows, self.stored_credentials.fields, strict=False):
            name, value, secret, remove = inputs
            self.fields[name] = forms.CharField(
                label="Field", initial=stored.name, disabled=True, required=False, widget=_TEXT
            )
            self.fields[value] = CredentialValueField(
                write_only=stored.secret,
                label=f"{stored.name} value",
                initial=None if stored.secret else stored.text.replace("\r\n", "\n"),
                placeholder="set · leave blank to keep" if stored.secret else "",
                help_text="" if isinstance(stored.value, str) else "JSON (keeps its type)",
            )
            self.fields[secret] = forms.BooleanField(
                label=f"{stored.name} secret", initial=stored.secret, required=False, widget=_CHECK
            )
            self.fields[remove] = forms.BooleanField(
                label=f"Remove {stored.name}", required=False, widget=_CHECK
            )
        for number, (name, value, secret) in enumerate(rows[len(self.stored_credentials.fields) :]):
            label = f"New field {number + 1}"
            self.fields[name] = forms.CharField(
                label=label,
                required=False,
                widget=forms.TextInput(
                    attrs={"class": "form-control form-control-sm", "placeholder": "new field"}
                ),
            )
            self.fields[value] = CredentialValueField(write_only=True, label=f"{label} value")
            self.fields[secret] = forms.ChoiceField(
                label=f"{label} secret",
                choices=NEW_FIELD_SECRET_CHOICES,
                required=False,
                widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
            )

    @property
    def credential_rows(self) -> list[CredentialRow]:
        """The credential field rows' bound inputs, for the template."""
        if "credentials" not in self.fields:
            return []
        rows = []
        for inputs in credential_row_inputs(self.stored_credentials):
            name, value, secret, *remove = (self[name] for name in inputs)
            rows.append(CredentialRow(name, value, secret, remove[0] if remove else None))
        return rows

    @property
    def credential_rows_help(self) -> str:
        return credential_rows_help(self.stored_credentials)

    @property
    def credential_input_names(self) -> set[str]:
        """Every credentials input, which templates lay out on their own."""
        names = {"credentials", "clear_credentials", "credentials_version"}
        return names | {name for name in self.fields if name.startswith(ROW_INPUT_PREFIX)}

    @property
    def changed_data(self) -> list[str]:
        """Changed inputs, for the admin's history (labels, never values): not the version, nor
        the rows of a client that did not send them."""
        return [
            name
            for name in super().changed_data
            if name != "credentials_version"
            and not (name.startswith(ROW_INPUT_PREFIX) and _row_value_input(name) not in self.data)
        ]

    def clean(self) -> dict:
        cleaned = super().clean()
        if "credentials" in self.fields:
            self._field_changes = self._clean_credential_rows(cleaned)
            self._clean_credentials_choice(cleaned)
        return cleaned

    def _clean_credentials_choice(self, cleaned: dict) -> None:
        chosen = [
            bool(cleaned.get("credentials")),
            bool(cleaned.get("clear_credentials")),
            bool(self._field_changes),
        ]
        if sum(chosen) > 1:
            raise forms.ValidationError(
                "Either change credential fields, replace all the credentials or remove them: "
                "one at a time."
            )
        stale = cleaned.get("credentials_version") != credentials_version(self.instance)
        if self._field_changes and stale:
            # The rows are numbered after the fields as they were: they may not match anymore.
            raise forms.ValidationError(
                "The credentials were changed since this page was loaded: reload it and make "
                "your change again."
            )

    def _clean_credential_rows(self, cleaned: dict) -> list[CredentialFieldChange]:
        rows = credential_row_inputs(self.stored_credentials)
        stored = self.stored_credentials.fields
        changes = []
        for inputs, field in zip(rows, stored, strict=False):
            # A row counts only when it was sent (a browser always sends a textarea, even blank):
            # a client sending none of them changes nothing; a box it left out is not "unticked".
            if inputs[1] not in self.data:
                continue
            if change := self._stored_field_change(cleaned, inputs, field):
                changes.append(change)
        taken = {field.name for field in stored}
        for name_input, value_input, secret_input in rows[len(stored) :]:
            name, text = cleaned.get(name_input, ""), cleaned.get(value_input, "")
            if not name:
                if text:
                    self.add_error(name_input, "Name this field.")
                continue
            if name in taken:
                self.add_error(name_input, f"There is already a field called {name}.")
                continue
            taken.add(name)
            secret = {"yes": True, "no": False}.get(cleaned.get(secret_input, ""))
            changes.append(CredentialFieldChange(name, text=text, secret=secret))
        return changes

    def _stored_field_change(
        self, cleaned: dict, inputs: tuple[str, ...], field: CredentialField
    ) -> CredentialFieldChange | None:
        _, value_input, secret_input, remove_input = inputs
        if cleaned.get(remove_input):
            return CredentialFieldChange(field.name, remove=True)
        text = cleaned.get(value_input, "")
        # A secret's input is blank unless a new value was typed; any other shows its value.
        unchanged = not text if field.secret else text == field.text.replace("\r\n", "\n")
        if not unchanged:
            try:
                credential_value(text, field.value)
            except ValueError:
                self.add_error(
                    value_input,
                    "This field holds JSON: enter JSON, or remove it and add it again as text.",
                )
                return None
        secret = cleaned.get(secret_input, False)
        if unchanged and secret == field.secret:
            return None
        return CredentialFieldChange(
            field.name,
            text=None if unchanged else text,
            secret=None if secret == field.secret else secret,
        )

    def credentials_change(self) -> str | None:
        """The new credentials ("" to clear), or None to keep the stored ones."""
        if "credentials" not in self.fields:
            return None
        if self.cleaned_data.get("clear_credentials"):
            return ""
        return self.cleaned_data.get("credentials") or None

    def credential_field_changes(self) -> list[CredentialFieldChange]:
        """The changes to single credential fields (none when they stay as they are)."""
        return self._field_changes


class ConnectionAdminForm(CredentialsChangeForm):
    """The admin's connection form, with write-only credentials."""

    class Meta:
        model = Connection
        fields = [
            "name",
            "slug",
            "description",
            "owner",
            "shared_with",
            "viewers",
            "network_access",
            "packages",
            "library_code",
        ]


class ConnectionForm(CredentialsChangeForm):
    """Create or edit a connection; credentials only for its owner and staff."""

    shared_with = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Shared to use with",
        help_text=(
            "Members of these groups edit its connectors, preview and ingest. Their code runs "
            "with the connection's credentials, so they can read them: share to use only with "
            "people you would give the credentials to."
        ),
    )
    viewers = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Shared to view with",
        help_text=(
            "Members of these groups see its connectors, runs and partitions; they run nothing."
        ),
    )

    class Meta:
        model = Connection
        fields = [
            "name",
            "description",
            "packages",
            "library_code",
            "network_access",
            "shared_with",
            "viewers",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "packages": forms.Textarea(attrs={"rows": 3, "placeholder": "requests==2.32.3"}),
            "library_code": CodeEditorWidget(),
        }

    def __init__(self, *args, allow_credentials: bool = True, **kwargs) -> None:
        super().__init__(*args, allow_credentials=allow_credentials, **kwargs)
        if not allow_credentials:
            # Members may edit code and packages; credentials (gone already), sharing and the
            # network are the owner's.
            for name in ("network_access", "shared_with", "viewers"):
                del self.fields[name]


class ConnectorCreateForm(forms.Form):
    """Name a new connector and pick its starting template."""

    name = forms.CharField(max_length=100)
    starter = forms.ChoiceField(
        choices=[(s.key, s.title) for s in STARTERS],
        widget=forms.RadioSelect,
        initial=STARTERS[0].key,
        label="Start from",
    )


SMALL_SELECT = {"class": "form-select form-select-sm"}


class ConnectorCodeForm(CsvOptionFields):
    """The editor's current code, interface, parser, parser options and packages (saved or
    not)."""

    code = forms.CharField(strip=False, required=False, widget=CodeEditorWidget(lint=True))
    interface = forms.ChoiceField(
        choices=Interface.choices, widget=forms.Select(attrs=SMALL_SELECT)
    )
    parser = forms.ChoiceField(
        choices=[("", "—"), *Parser.choices],
        required=False,
        widget=forms.Select(attrs=SMALL_SELECT),
    )
    packages = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "class": "form-control", "placeholder": "one requirement per line"}
        ),
        validators=[validate_requirements],
        help_text=(
            "Extra requirements for this connector, added to the connection's. Previews use "
            "what is typed here, saved or not."
        ),
    )

    # Saving refuses bad parser options; a preview sends them on, for the engine to explain.
    check_parser_options = True

    @classmethod
    def initial_for(cls, connector) -> dict[str, Any]:
        """The editor's inputs for a saved connector."""
        return {
            "code": connector.code,
            "interface": connector.interface,
            "parser": connector.parser,
            "packages": connector.packages,
            **csv_option_inputs(connector.parser_options if connector.parser == "csv" else {}),
        }

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("interface") == Interface.BYTES and not cleaned.get("parser"):
            self.add_error("parser", "A bytes connector needs a parser.")
        if cleaned.get("interface") != Interface.BYTES:
            cleaned["parser"] = ""
        cleaned["parser_options"] = self._parser_options(cleaned)
        problem = None
        if self.check_parser_options and cleaned["parser_options"]:
            problem = parser_options_problem(cleaned["parser"], cleaned["parser_options"])
        if problem:
            self.add_error(None, problem)
        return cleaned

    def _parser_options(self, cleaned: dict[str, Any]) -> dict[str, Any] | None:
        """The options the inputs say; None when they were not sent (then the saved ones
        apply: Connector.parser_options_for)."""
        if "csv_delimiter" not in self.data:
            return None
        if cleaned.get("parser") != Parser.CSV:
            return {}  # the inputs are the csv parser's; other parsers take no options
        return csv_options_from_inputs(cleaned)


class ConnectorUploadForm(forms.Form):
    """An export file uploaded in the editor (export_format), parsed."""

    file = forms.FileField(max_length=255)

    def clean_file(self) -> ConnectorExport:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is too large for a connector.")
        try:
            return export_format.parse(upload.read().decode())
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
        except export_format.ExportFormatError as exc:
            raise forms.ValidationError(f"The file's header, {exc}") from None
