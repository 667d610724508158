"""Writes to connections, connectors and code versions: the only place that changes them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from connections import audit, crypto
from connections.crypto import CredentialsUnreadable
from connections.export_format import ConnectorExport
from connections.models import AuditAction, CodeVersion, Connection, Connector
from connector_engine.credentials import credential_fields, credentials_object, looks_secret


def unique_slug(model: type[models.Model], name: str, *, exclude_pk: int | None = None) -> str:
    """Return a slug for `name` not used yet by another row of `model`."""
    base = slugify(name)[:90] or model._meta.model_name
    slug, number = base, 2
    rows = model.objects.exclude(pk=exclude_pk) if exclude_pk else model.objects.all()
    while rows.filter(slug=slug).exists():
        slug, number = f"{base}-{number}", number + 1
    return slug


@dataclass(frozen=True)
class CredentialFieldChange:
    """A change to one credential field, as its owner typed it: an existing field or a new one."""

    name: str
    text: str | None = None  # the new value as typed; None keeps the stored value
    secret: bool | None = None  # None keeps the field's setting (a new field: its name's default)
    remove: bool = False


def credential_value(text: str, previous: Any = "") -> Any:
    """A field's value from what was typed: a string, unless the field held another JSON type
    (number, boolean, null, object, list): then the text must be JSON, and keeps its type.

    Raises ValueError when such a field's text is not JSON.
    """
    return text if isinstance(previous, str) else json.loads(text)


def connection_set_credentials(*, connection: Connection, credentials: str) -> None:
    """Encrypt and store new credentials (empty clears them); the caller saves.

    Fields keep their owner-chosen secret setting by name; new names take their default.
    """
    _store_credentials(connection, credentials, _secret_settings(connection))


def connection_update_credential_fields(
    *, connection: Connection, changes: Sequence[CredentialFieldChange]
) -> None:
    """Change, add or remove single credential fields; the caller saves.

    The others stay as stored, in their order and with their JSON types. Adding fields to
    credentials that are one plain value (not a JSON object) drops that value.
    """
    if not changes:
        return
    values = credentials_object(connection.decrypted_credentials()) or {}
    secret = _secret_settings(connection)
    for change in changes:
        if change.remove:
            values.pop(change.name, None)
            secret.pop(change.name, None)
            continue
        if change.text is not None:
            values[change.name] = credential_value(change.text, values.get(change.name, ""))
        elif change.name not in values:
            raise ValueError(f"There is no credential field {change.name!r} to change.")
        if change.secret is not None:
            secret[change.name] = change.secret
    _store_credentials(connection, json.dumps(values, ensure_ascii=False), secret)


def _secret_settings(connection: Connection) -> dict[str, bool]:
    """Whether each stored field is secret now (none when unset, plain or unreadable)."""
    try:
        return {field.name: field.secret for field in connection.credential_fields()}
    except CredentialsUnreadable:
        return {}


def _store_credentials(connection: Connection, text: str, secret: dict[str, bool]) -> None:
    connection.credentials_token = crypto.encrypt(text) if text else ""
    connection.credentials_changed_at = timezone.now()
    names = [field.name for field in credential_fields(text)]
    chosen = {name: secret.get(name, looks_secret(name)) for name in names}
    # Store a list only when the owner's choice differs from the defaults by name.
    defaults = all(is_secret == looks_secret(name) for name, is_secret in chosen.items())
    connection.secret_fields = None if defaults else [name for name in names if chosen[name]]


def connection_create(
    *,
    name: str,
    owner,
    slug: str = "",
    description: str = "",
    credentials: str = "",
    credential_changes: Sequence[CredentialFieldChange] = (),
    packages: str = "",
    library_code: str = "",
    network_access: bool = True,
    shared_with: Iterable[Group] = (),
    viewers: Iterable[Group] = (),
) -> Connection:
    """Create a connection, encrypting its credentials (given whole, or as new fields)."""
    connection = Connection(
        network_access=network_access,
        name=name,
        slug=slug or unique_slug(Connection, name),
        description=description,
        packages=packages,
        library_code=library_code,
        owner=owner,
    )
    if credentials:
        connection_set_credentials(connection=connection, credentials=credentials)
    connection_update_credential_fields(connection=connection, changes=credential_changes)
    connection.full_clean()
    with transaction.atomic():
        connection.save()
        connection.shared_with.set(shared_with)
        connection.viewers.set(viewers)
        audit.record_connection_changes(before=audit.EMPTY, connection=connection, created=True)
    return connection


def connection_update(
    *,
    connection: Connection,
    name: str,
    description: str,
    packages: str,
    library_code: str,
    shared_with: Iterable[Group] | None = None,
    viewers: Iterable[Group] | None = None,
    credentials: str | None = None,
    credential_changes: Sequence[CredentialFieldChange] = (),
    network_access: bool | None = None,
) -> Connection:
    """Change a connection; credentials None keeps them, "" clears them, credential_changes
    change single fields; network_access None keeps it."""
    # From the database: a model form has already put the new values on the instance.
    before = audit.saved_connection_state(connection)
    connection.name, connection.description = name, description
    connection.packages, connection.library_code = packages, library_code
    if network_access is not None:
        connection.network_access = network_access
    if credentials is not None:
        connection_set_credentials(connection=connection, credentials=credentials)
    connection_update_credential_fields(connection=connection, changes=credential_changes)
    connection.full_clean()
    with transaction.atomic():
        connection.save()
        if shared_with is not None:
            connection.shared_with.set(shared_with)
        if viewers is not None:
            connection.viewers.set(viewers)
        audit.record_connection_changes(before=before, connection=connection)
    return connection


def credentials_rotate(*, keys: Sequence[str]) -> int:
    """Re-encrypt every stored credential under the newest of `keys`; return how many."""
    crypto.validate_keys(keys)
    count = 0
    with transaction.atomic():
        for connection in Connection.objects.exclude(credentials_token="").select_for_update():
            connection.credentials_token = crypto.reencrypt(connection.credentials_token, keys)
            # update_fields: rotation is not a credentials change, so changed_at stays.
            connection.save(update_fields=["credentials_token"])
            count += 1
    return count


def connector_create(
    *,
    connection: Connection,
    name: str,
    code: str,
    interface: str = "pandas",
    parser: str = "",
    parser_options: dict[str, Any] | None = None,
    packages: str = "",
    author=None,
    slug: str = "",
) -> Connector:
    """Create a connector and its first code version."""
    with transaction.atomic():
        connector = _connector_insert(
            connection=connection,
            name=name,
            code=code,
            interface=interface,
            parser=parser,
            parser_options=parser_options,
            packages=packages,
            author=author,
            slug=slug,
        )
        _record_code(connector, AuditAction.CONNECTOR_CREATED, connector.latest_version)
    return connector


def _connector_insert(
    *,
    connection: Connection,
    name: str,
    code: str,
    interface: str,
    parser: str,
    parser_options: dict[str, Any] | None,
    packages: str,
    author,
    slug: str,
) -> Connector:
    with transaction.atomic():
        connector = Connector(
            connection=connection,
            name=name,
            slug=slug or unique_slug(Connector, name),
            interface=interface,
            parser=parser,
            parser_options=parser_options or {},
            code=code,
            packages=packages,
        )
        connector.full_clean()
        connector.save()
        _version_create(connector=connector, author=author)
    return connector


def connector_save_code(
    *,
    connector: Connector,
    code: str,
    packages: str,
    interface: str,
    parser: str,
    parser_options: dict[str, Any] | None = None,
    author=None,
) -> CodeVersion | None:
    """Save a connector's code; record a new version when code, packages, interface, parser or
    its options changed."""
    with transaction.atomic():
        version = _code_save(
            connector=connector,
            code=code,
            packages=packages,
            interface=interface,
            parser=parser,
            parser_options=parser_options,
            author=author,
        )
        _record_code(connector, AuditAction.CODE_SAVED, version)
    return version


def _record_code(
    connector: Connector, action: str, version: CodeVersion | None, **details: Any
) -> None:
    """Record a new code version in the audit log (nothing when nothing changed)."""
    if version is not None:
        audit.record(
            connection=connector.connection,
            action=action,
            target=connector.slug,
            details={"version": version.number, **details},
        )


def _code_save(
    *,
    connector: Connector,
    code: str,
    packages: str,
    interface: str,
    parser: str,
    parser_options: dict[str, Any] | None,
    author,
) -> CodeVersion | None:
    # Browsers post a form's line breaks as CRLF; previews and versions compare code with LF.
    code, packages = code.replace("\r\n", "\n"), packages.replace("\r\n", "\n")
    with transaction.atomic():
        # Lock the connector so two saves cannot take the same version number.
        locked = Connector.objects.select_for_update().get(pk=connector.pk)
        locked.code, locked.packages = code, packages
        locked.interface, locked.parser = interface, parser
        locked.parser_options = parser_options or {}
        locked.full_clean()
        locked.save()
        connector.refresh_from_db()
        latest = locked.latest_version
        if latest is not None and latest.fingerprint == locked.code_fingerprint:
            return None
        return _version_create(connector=locked, author=author)


def connector_revert(*, connector: Connector, version: CodeVersion, author=None) -> CodeVersion:
    """Restore an earlier version's code, packages and interface as a new version."""
    if version.connector_id != connector.pk:
        raise ValueError("That version belongs to another connector.")
    with transaction.atomic():
        new_version = _code_save(
            connector=connector,
            code=version.code,
            packages=version.packages,
            interface=version.interface,
            parser=version.parser,
            parser_options=version.parser_options,
            author=author,
        )
        _record_code(connector, AuditAction.CODE_REVERTED, new_version, from_version=version.number)
    # Reverting to what is already current changes nothing: the latest version stays.
    return new_version or connector.latest_version


def _version_create(*, connector: Connector, author) -> CodeVersion:
    last = connector.versions.aggregate(last=Max("number"))["last"] or 0
    return CodeVersion.objects.create(
        connector=connector,
        number=last + 1,
        code=connector.code,
        packages=connector.packages,
        interface=connector.interface,
        parser=connector.parser,
        parser_options=connector.parser_options,
        author=author,
    )


def connector_import(
    *, connection: Connection, export: ConnectorExport, slug: str = "", author=None
) -> tuple[Connector, CodeVersion | None, bool]:
    """Create the exported connector on `connection`, or save it as a new version of the
    connector with that slug; return it, the new version (None: nothing changed) and whether
    it was created."""
    slug = slug or export.slug
    existing = Connector.objects.filter(slug=slug).first() if slug else None
    if existing is not None and existing.connection_id != connection.pk:
        raise ValueError(
            f"The connector {slug!r} belongs to the connection {existing.connection.slug!r}, "
            f"not {connection.slug!r}."
        )
    fields = {
        "code": export.code,
        "interface": export.interface,
        "parser": export.parser,
        "parser_options": export.parser_options,
        "packages": export.packages,
        "author": author,
    }
    with transaction.atomic():
        if existing is None:
            connector = _connector_insert(
                connection=connection, name=export.name, slug=slug, **fields
            )
            version = connector.latest_version
        else:
            connector, version = existing, _code_save(connector=existing, **fields)
        created = existing is None
        _record_code(connector, AuditAction.CONNECTOR_IMPORTED, version, created=created)
    return connector, version, created


def connector_export(*, connector: Connector) -> ConnectorExport:
    """What an export file of the connector's saved code holds."""
    return ConnectorExport(
        name=connector.name,
        slug=connector.slug,
        interface=connector.interface,
        code=connector.code,
        parser=connector.parser,
        parser_options=dict(connector.parser_options or {}),
        packages=connector.packages,
    )
