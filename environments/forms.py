"""The package file upload form (its content is checked by services.package_file_add)."""

from __future__ import annotations

from django import forms


class PackageFileForm(forms.Form):
    """Upload a wheel or sdist to a connection."""

    file = forms.FileField(
        label="Package file",
        help_text="A wheel (.whl) or source distribution (.tar.gz, .zip), installed into the "
        "environment of every connector of this connection.",
        widget=forms.ClearableFileInput(attrs={"accept": ".whl,.tar.gz,.zip"}),
    )
