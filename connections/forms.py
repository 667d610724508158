"""Forms for connections and connectors; credentials are write-only everywhere."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import Group

from connections.models import Connection, Interface, Parser, validate_requirements
from connections.templates_gallery import STARTERS
from connections.widgets import CodeEditorWidget


class CredentialsField(forms.CharField):
    """A write-only credentials input: never renders the stored value; blank keeps it."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("label", "Credentials")
        super().__init__(**kwargs)


def describe_credentials(connection: Connection | None) -> str:
    """Help text saying whether credentials are set, never what they are."""
    status = connection.credentials_status if connection and connection.pk else "not set"
    return (
        f"Currently: {status}. Write-only: the stored value is never shown. "
        "Leave blank to keep it. Often JSON; your connector's context(credentials) parses it."
    )


class CredentialsChangeForm(forms.ModelForm):
    """A connection form with the write-only credentials field and a "remove" box."""

    credentials = CredentialsField()
    clear_credentials = forms.BooleanField(required=False, label="Remove stored credentials")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["credentials"].help_text = describe_credentials(self.instance)

    def clean(self) -> dict:
        cleaned = super().clean()
        self.clean_credentials_choice(cleaned)
        return cleaned

    def clean_credentials_choice(self, cleaned: dict) -> None:
        if cleaned.get("credentials") and cleaned.get("clear_credentials"):
            raise forms.ValidationError("Either enter new credentials or remove them, not both.")

    def credentials_change(self) -> str | None:
        """The new credentials ("" to clear), or None to keep the stored ones."""
        if "credentials" not in self.fields:
            return None
        if self.cleaned_data.get("clear_credentials"):
            return ""
        return self.cleaned_data.get("credentials") or None


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
        super().__init__(*args, **kwargs)
        if not allow_credentials:
            # Members may edit code and packages; credentials, sharing and the network are the
            # owner's.
            owner_only = ("credentials", "clear_credentials", "network_access", "shared_with")
            for name in (*owner_only, "viewers"):
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


class ConnectorCodeForm(forms.Form):
    """The editor's current code, interface and parser (saved or not)."""

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
        help_text="Extra requirements for this connector, added to the connection's.",
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("interface") == Interface.BYTES and not cleaned.get("parser"):
            self.add_error("parser", "A bytes connector needs a parser.")
        if cleaned.get("interface") != Interface.BYTES:
            cleaned["parser"] = ""
        return cleaned
