"""Connections (credentials, shared library code, packages) and their connectors' code."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from connections import crypto
from connector_engine.credentials import CredentialField, credential_fields
from connector_engine.environments.requirements import parse_requirements
from connector_engine.parsers import parser_options as checked_parser_options
from connector_engine.protocol import Interface as EngineInterface
from connector_engine.protocol import Parser as EngineParser
from connector_engine.user_code import ConnectorError


def validate_requirements(value: str) -> None:
    """Refuse requirement text with bad lines: one message per bad line, with its number."""
    _, problems = parse_requirements(value)
    if problems:
        raise ValidationError(problems)


def parser_options_problem(parser: str, options: dict[str, Any] | None) -> str | None:
    """The engine's message about bad parser options (connector_engine.parsers), or None."""
    if not parser and not options:
        return None
    if not isinstance(options, dict):
        return 'Parser options must be a JSON object, like {"delimiter": ";"}.'
    if not parser:
        return "Parser options need a parser."
    try:
        checked_parser_options(parser, options)
    except ConnectorError as exc:
        return exc.message
    return None


Interface = models.TextChoices(
    "Interface", [(item.name, (item.value, item.label)) for item in EngineInterface]
)
Parser = models.TextChoices(
    "Parser", [(item.name, (item.value, item.label)) for item in EngineParser]
)


class ConnectionQuerySet(models.QuerySet):
    def visible_to(self, user) -> ConnectionQuerySet:
        """Connections `user` may see: own, shared with their groups (to use or to view), or all
        for staff."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        groups = user.groups.all()
        shared = Q(shared_with__in=groups) | Q(viewers__in=groups)
        return self.filter(Q(owner=user) | shared).distinct()

    def usable_by(self, user) -> ConnectionQuerySet:
        """Connections `user` may run code on and change: own, shared with their groups to use,
        or all for staff."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(Q(owner=user) | Q(shared_with__in=user.groups.all())).distinct()


class Connection(models.Model):
    """A source's credentials, shared library code and packages, used by its connectors."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # Fernet token; never read directly: see `credentials`. Empty means no credentials.
    credentials_token = models.TextField(blank=True, editable=False)
    credentials_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Which fields of JSON object credentials are secret. None: each field takes its name's
    # default (`looks_secret`); a list: exactly these names are secret (the owner chose).
    secret_fields = models.JSONField(null=True, blank=True, default=None, editable=False)
    packages = models.TextField(
        blank=True,
        validators=[validate_requirements],
        help_text="Python requirements for every connector, one PEP 508 line each.",
    )
    library_code = models.TextField(
        blank=True,
        help_text="Shared Python code, importable by this connection's connectors as `library`.",
    )
    network_access = models.BooleanField(
        default=True,
        help_text=(
            "Off: its connector code and package builds run with no network at all (no "
            "downloads from the package index; Spark, reached over the network, is unavailable)."
        ),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="connections"
    )
    # Two share levels. Use: edit connectors, preview, ingest (whoever runs code on a connection
    # can read its credentials: masking stops accidents, not intent). View: see connectors, runs
    # and partitions, run nothing.
    shared_with = models.ManyToManyField(
        Group,
        blank=True,
        related_name="connections",
        help_text=(
            "Groups whose members may use it: edit its connectors, preview and ingest. Their code "
            "runs with the credentials, so they can read them."
        ),
    )
    viewers = models.ManyToManyField(
        Group,
        blank=True,
        related_name="viewable_connections",
        help_text=(
            "Groups whose members may see its connectors, runs and partitions, and run nothing."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ConnectionQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_token)

    @property
    def credentials_status(self) -> str:
        """Say whether credentials are set and when they changed, never what they are."""
        if not self.credentials_token:
            return "not set"
        when = self.credentials_changed_at
        return f"set, changed {when:%Y-%m-%d %H:%M} UTC" if when else "set"

    def decrypted_credentials(self) -> str:
        """Return the plaintext credentials exactly as stored: what `context(credentials)` gets."""
        return crypto.decrypt(self.credentials_token) if self.credentials_token else ""

    def secret_field_names(self) -> list[str] | None:
        """The owner's choice of secret fields (None: each field's default by name), for the
        engine's `credential_fields` and `secret_values`."""
        return None if self.secret_fields is None else list(self.secret_fields)

    def credential_fields(self) -> list[CredentialField]:
        """The fields of JSON object credentials, in order, each secret or not (decrypts; none
        when the credentials are one plain value or not set)."""
        return credential_fields(self.decrypted_credentials(), self.secret_field_names())


class Connector(models.Model):
    """One connector module: code, interface and parser, reading through its connection."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="connectors")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    interface = models.CharField(max_length=10, choices=Interface, default=Interface.PANDAS)
    parser = models.CharField(
        max_length=10, choices=Parser, blank=True, help_text="How read_bytes output becomes rows."
    )
    code = models.TextField()
    packages = models.TextField(
        blank=True,
        validators=[validate_requirements],
        help_text="Extra requirements for this connector, one PEP 508 line each.",
    )
    # Only the options that differ from the parser's defaults (connector_engine.parsers): an
    # untouched connector keeps {}.
    parser_options = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            'The parser\'s options that differ from its defaults, e.g. {"delimiter": ";"} for '
            "csv (delimiter, quote, header, encoding, null_values, skip_rows)."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection__name", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(interface="bytes") | ~Q(parser=""), name="bytes_connector_has_parser"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection.name} / {self.name}"

    def clean(self) -> None:
        if self.interface == Interface.BYTES and not self.parser:
            raise ValidationError({"parser": "A bytes connector needs a parser."})
        if self.parser_options is None:
            self.parser_options = {}  # the admin's input left blank
        if problem := parser_options_problem(self.parser, self.parser_options):
            raise ValidationError({"parser_options": problem})

    def parser_options_for(self, parser: str, given: dict[str, Any] | None) -> dict[str, Any]:
        """The options to use with `parser`: those given (the editor's), or when none were
        given the saved ones if `parser` is the saved parser (another parser starts from none)."""
        if given is not None:
            return given if parser else {}
        return dict(self.parser_options) if parser and parser == self.parser else {}

    @property
    def code_fingerprint(self) -> str:
        return code_fingerprint(
            self.code, self.packages, self.interface, self.parser, self.parser_options
        )

    @property
    def latest_version(self) -> CodeVersion | None:
        return self.versions.order_by("-number").first()


def code_fingerprint(
    code: str,
    packages: str,
    interface: str,
    parser: str = "",
    parser_options: dict[str, Any] | None = None,
) -> str:
    """Identify a version of a connector's code: code, packages, interface (and bytes parser
    and its options).

    An ingest's code fingerprint covers more (the connection's library code, packages and
    uploaded files too): runs.ingest.planning.ingest_inputs.
    """
    parts = [code, packages, interface, parser or ""]
    if parser_options:  # only when set: versions saved before options existed keep their hash
        parts.append(json.dumps(parser_options, sort_keys=True))
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        # Length-prefixed, so moving text between fields changes the hash.
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


class CodeVersion(models.Model):
    """An immutable snapshot of a connector's code, packages, interface, parser and options."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    code = models.TextField()
    packages = models.TextField(blank=True)
    interface = models.CharField(max_length=10, choices=Interface)
    parser = models.CharField(max_length=10, choices=Parser, blank=True)
    parser_options = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connector", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["connector", "number"], name="unique_version_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.connector} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError(
                "A code version is immutable: save the connector to make a new one."
            )
        self.fingerprint = code_fingerprint(
            self.code, self.packages, self.interface, self.parser, self.parser_options
        )
        super().save(*args, **kwargs)


class AuditAction(models.TextChoices):
    CONNECTION_CREATED = "connection_created", "connection created"
    CREDENTIALS_CHANGED = "credentials_changed", "credentials changed"
    LIBRARY_CHANGED = "library_changed", "library code changed"
    PACKAGES_CHANGED = "packages_changed", "packages changed"
    NETWORK_CHANGED = "network_changed", "network access changed"
    FILE_UPLOADED = "file_uploaded", "package file uploaded"
    FILE_DELETED = "file_deleted", "package file deleted"
    SHARE_ADDED = "share_added", "shared with a group"
    SHARE_CHANGED = "share_changed", "share level changed"
    SHARE_REMOVED = "share_removed", "share removed"
    SCHEDULE_SET = "schedule_set", "schedule set"
    SCHEDULE_OFF = "schedule_off", "schedule turned off"
    CONNECTOR_CREATED = "connector_created", "connector created"
    CODE_SAVED = "code_saved", "connector code saved"
    CODE_REVERTED = "code_reverted", "connector code reverted"
    CONNECTOR_IMPORTED = "connector_imported", "connector imported"


class AuditVia(models.TextChoices):
    PAGE = "page", "page"
    ADMIN = "admin", "admin"
    API = "api", "API"
    CLI = "cli", "command line"
    SYSTEM = "system", "system"


class AuditEvent(models.Model):
    """One recorded change to a connection (connections.audit writes them): who, when, how and
    what. Credentials are recorded by field name only: no value is ever stored here."""

    # SET_NULL: the record outlives the connection; `connection_slug` still says which it was.
    connection = models.ForeignKey(
        Connection, null=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    connection_slug = models.CharField(max_length=100)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The user's name when the change was made, or the command ("manage.py schedule").
    actor_name = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=10, choices=AuditVia)
    action = models.CharField(max_length=30, choices=AuditAction)
    target = models.CharField(max_length=255, blank=True)  # a connector slug, file or group name
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["connection", "-at"], name="audit_connection_at")]

    def __str__(self) -> str:
        return f"{self.connection_slug}: {self.get_action_display()} ({self.at:%Y-%m-%d %H:%M})"
