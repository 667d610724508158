"""Forms for connections; credentials are write-only everywhere."""

from __future__ import annotations

from django import forms

from connections.models import Connection


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


class ConnectionAdminForm(forms.ModelForm):
    """The admin's connection form, with write-only credentials."""

    credentials = CredentialsField()
    clear_credentials = forms.BooleanField(required=False, label="Remove stored credentials")

    class Meta:
        model = Connection
        fields = ["name", "slug", "description", "owner", "shared_with", "packages", "library_code"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["credentials"].help_text = describe_credentials(self.instance)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("credentials") and cleaned.get("clear_credentials"):
            raise forms.ValidationError("Either enter new credentials or remove them, not both.")
        return cleaned

    def credentials_change(self) -> str | None:
        """The new credentials ("" to clear), or None to keep the stored ones."""
        if self.cleaned_data.get("clear_credentials"):
            return ""
        return self.cleaned_data.get("credentials") or None
