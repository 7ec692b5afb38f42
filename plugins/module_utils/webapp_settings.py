# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""App Service application settings and connection strings: read, snapshot, restore.

``AppConfigurationApi`` reads and writes the three ARM resources involved
(``config/appsettings``, ``config/connectionstrings`` and the site-wide
``config/slotConfigNames``); ``AppSettingsRollback`` decides: what differs,
what a restore would change, whether a snapshot may be used, and what the
result may show.  Values never leave this module unmasked, with one
exception: a Key Vault reference (``@Microsoft.KeyVault(...)``) is a pointer,
not a secret, so it is shown, stored and written back verbatim (never
resolved), which is what lets a restore put the reference back unchanged.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import PRODUCTION
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.health import HealthProbe, HealthProbeError
from ansible_collections.sre.rollback.plugins.module_utils.webapp_restart import restart_and_wait

MASK = "********"
SNAPSHOT_FORMAT = "sre.rollback/webapp-app-settings"
SNAPSHOT_VERSION = 1
SNAPSHOT_KEYS = frozenset({
    "format", "version", "subscription_id", "resource_group", "site", "slot", "taken_at",
    "app_settings", "connection_strings", "slot_config_names",
})
SECTIONS = ("app_settings", "connection_strings", "slot_config_names")
MODES = ("exact", "merge")

# ConnectionStringType of the App Service REST API (azure-mgmt-web models.ConnectionStringType).
CONNECTION_STRING_TYPES = ("MySql", "SQLServer", "SQLAzure", "Custom", "NotificationHub", "ServiceBus",
                           "EventHub", "ApiHub", "DocDb", "RedisCache", "PostgreSQL")

# "App setting names can contain only letters, numbers (0-9), periods (.), and underscores (_)"
# (learn.microsoft.com, Configure an App Service app).  Applied to the names a restore would add,
# and to connection string names too, because on Linux both become environment variable names.
SETTING_NAME = re.compile(r"^[A-Za-z0-9_.]+$")

KEY_VAULT_PREFIX = "@microsoft.keyvault("
# The two forms App Service resolves: SecretUri=https://vault/secrets/name[/version], or
# VaultName=vault;SecretName=name[;SecretVersion=version].
KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\(\s*(?:SecretUri=https://[^\s()]+"
    r"|VaultName=[^;()\s]+;\s*SecretName=[^;()\s]+(?:;\s*SecretVersion=[^;()\s]+)?)\s*\)$",
    re.IGNORECASE,
)


def is_key_vault_reference(value):
    return isinstance(value, str) and value.strip().lower().startswith(KEY_VAULT_PREFIX)


def shown(value):
    """What the result may show of a value: a Key Vault reference as it is, anything else masked."""
    return value if is_key_vault_reference(value) else MASK


def canonical_type(given):
    return {name.lower(): name for name in CONNECTION_STRING_TYPES}.get(str(given).lower())


@dataclass
class AppConfiguration:
    """The settings of one slot, and the site's sticky names (slotConfigNames is per site)."""

    app_settings: dict = field(default_factory=dict)
    connection_strings: dict = field(default_factory=dict)  # name -> {"value": str, "type": str}
    sticky_app_settings: list = field(default_factory=list)
    sticky_connection_strings: list = field(default_factory=list)
    sticky_storage: list = field(default_factory=list)  # azureStorageConfigNames: never changed, sent back as read

    def masked(self):
        return dict(
            app_settings={name: shown(value) for name, value in sorted(self.app_settings.items())},
            connection_strings={name: dict(type=pair["type"], value=shown(pair["value"]))
                                for name, pair in sorted(self.connection_strings.items())},
            slot_config_names=dict(app_setting_names=list(self.sticky_app_settings),
                                   connection_string_names=list(self.sticky_connection_strings)),
        )

    def key_vault_references(self):
        names = [name for name, value in self.app_settings.items() if is_key_vault_reference(value)]
        names += [name for name, pair in self.connection_strings.items() if is_key_vault_reference(pair["value"])]
        return sorted(names)


class AppConfigurationApi:
    """The ARM calls, through azure-mgmt-web's WebAppsOperations (one AppServiceSlots gives the client)."""

    def __init__(self, slots):
        self.slots = slots
        self.web_apps = slots.client.web_apps
        self.resource_group = slots.resource_group
        self.app = slots.app

    def require_slot(self, slot):
        self.slots.require_slot(slot)

    def read(self, slot):
        on_slot = slot != PRODUCTION
        rg, app, web = self.resource_group, self.app, self.web_apps
        with arm_call("Reading the app settings of slot %s of %s" % (slot, app)):
            settings = web.list_application_settings_slot(rg, app, slot) if on_slot else \
                web.list_application_settings(rg, app)
        with arm_call("Reading the connection strings of slot %s of %s" % (slot, app)):
            strings = web.list_connection_strings_slot(rg, app, slot) if on_slot else web.list_connection_strings(rg, app)
        with arm_call("Reading the slot-specific setting names of %s" % app):
            names = web.list_slot_configuration_names(rg, app)
        return AppConfiguration(
            app_settings={name: "" if value is None else str(value) for name, value in (settings.properties or {}).items()},
            connection_strings={name: dict(value="" if pair.value is None else str(pair.value), type=_type_name(pair.type))
                                for name, pair in (strings.properties or {}).items()},
            sticky_app_settings=list(names.app_setting_names or []),
            sticky_connection_strings=list(names.connection_string_names or []),
            sticky_storage=list(names.azure_storage_config_names or []),
        )

    def write_app_settings(self, slot, settings):
        body = {"properties": dict(settings)}
        with arm_call("Writing the app settings of slot %s of %s" % (slot, self.app)):
            if slot == PRODUCTION:
                self.web_apps.update_application_settings(self.resource_group, self.app, body)
            else:
                self.web_apps.update_application_settings_slot(self.resource_group, self.app, slot, body)

    def write_connection_strings(self, slot, strings):
        body = {"properties": {name: dict(value=pair["value"], type=pair["type"]) for name, pair in strings.items()}}
        with arm_call("Writing the connection strings of slot %s of %s" % (slot, self.app)):
            if slot == PRODUCTION:
                self.web_apps.update_connection_strings(self.resource_group, self.app, body)
            else:
                self.web_apps.update_connection_strings_slot(self.resource_group, self.app, slot, body)

    def write_sticky_names(self, app_setting_names, connection_string_names, storage_names):
        body = {"properties": {"appSettingNames": list(app_setting_names),
                               "connectionStringNames": list(connection_string_names),
                               "azureStorageConfigNames": list(storage_names)}}
        with arm_call("Writing the slot-specific setting names of %s" % self.app):
            self.web_apps.update_slot_configuration_names(self.resource_group, self.app, body)

    def restart(self, slot, health_url=None, wait_timeout=300):
        return restart_and_wait(self.slots, slot, health_url, wait_timeout)[1]


def _type_name(kind):
    name = getattr(kind, "value", kind)
    return canonical_type(name) or str(name)


# ---- snapshots ---------------------------------------------------------------------------------


@dataclass
class Snapshot:
    path: str
    resource_group: str
    site: str
    slot: str
    taken_at: str
    configuration: AppConfiguration
    subscription_id: str | None = None

    def metadata(self):
        return dict(path=self.path, resource_group=self.resource_group, site=self.site, slot=self.slot,
                    taken_at=self.taken_at, subscription_id=self.subscription_id)


def snapshot_document(configuration, subscription_id, resource_group, site, slot, taken_at):
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "subscription_id": subscription_id,
        "resource_group": resource_group,
        "site": site,
        "slot": slot,
        "taken_at": taken_at,
        "app_settings": dict(sorted(configuration.app_settings.items())),
        "connection_strings": {name: dict(value=pair["value"], type=pair["type"])
                               for name, pair in sorted(configuration.connection_strings.items())},
        "slot_config_names": {"app_setting_names": list(configuration.sticky_app_settings),
                              "connection_string_names": list(configuration.sticky_connection_strings)},
    }


def load_snapshot(path):
    """Read and validate a snapshot file; every problem is a RollbackError naming the file."""
    def bad(problem):
        return RollbackError("snapshot_path %s %s" % (path, problem))

    if not os.path.exists(path):
        raise bad("does not exist.")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except ValueError as error:
        raise bad("is not valid JSON (%s); it is not a snapshot this module wrote." % error) from None
    except OSError as error:
        raise bad("cannot be read: %s." % error.strerror) from None
    if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
        raise bad("is not an app settings snapshot (its format is not %s)." % SNAPSHOT_FORMAT)
    if document.get("version") != SNAPSHOT_VERSION:
        raise bad("has snapshot version %r; this module reads version %s." % (document.get("version"), SNAPSHOT_VERSION))
    unknown = sorted(set(document) - SNAPSHOT_KEYS)
    if unknown:
        raise bad("has unknown keys: %s. Nothing was changed; a snapshot holds only %s."
                  % (", ".join(unknown), ", ".join(sorted(SNAPSHOT_KEYS))))
    missing = sorted(SNAPSHOT_KEYS - {"subscription_id"} - set(document))
    if missing:
        raise bad("lacks %s." % ", ".join(missing))
    for key in ("resource_group", "site", "slot", "taken_at"):
        if not isinstance(document[key], str) or not document[key]:
            raise bad("has no valid %s." % key)
    settings = document["app_settings"]
    if not isinstance(settings, dict) or not all(isinstance(value, str) for value in settings.values()):
        raise bad("has app_settings that are not an object of names to string values.")
    strings = {}
    if not isinstance(document["connection_strings"], dict):
        raise bad("has connection_strings that are not an object.")
    for name, pair in document["connection_strings"].items():
        if not isinstance(pair, dict) or set(pair) != {"value", "type"} or not isinstance(pair["value"], str):
            raise bad("has connection string %r that is not {\"value\": <string>, \"type\": <type>}." % name)
        kind = canonical_type(pair["type"])
        if kind is None:
            raise bad("gives connection string %r the type %r; App Service knows %s."
                      % (name, pair["type"], ", ".join(CONNECTION_STRING_TYPES)))
        strings[name] = dict(value=pair["value"], type=kind)
    sticky = document["slot_config_names"]
    lists = ("app_setting_names", "connection_string_names")
    if not isinstance(sticky, dict) or set(sticky) - set(lists) or not all(
            isinstance(sticky.get(key, []), list) and all(isinstance(n, str) for n in sticky.get(key, [])) for key in lists):
        raise bad("has slot_config_names that are not {\"app_setting_names\": [...], \"connection_string_names\": [...]}.")
    return Snapshot(
        path=path, resource_group=document["resource_group"], site=document["site"], slot=document["slot"],
        taken_at=document["taken_at"], subscription_id=document.get("subscription_id"),
        configuration=AppConfiguration(
            app_settings=dict(settings), connection_strings=strings,
            sticky_app_settings=list(sticky.get("app_setting_names", [])),
            sticky_connection_strings=list(sticky.get("connection_string_names", [])),
        ),
    )


def write_snapshot(path, document):
    """Write atomically with mode 0600: the file holds every secret value of the app."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".snapshot-", suffix=".tmp")
    except OSError as error:
        raise RollbackError("Cannot write the snapshot in %s: %s." % (directory, error.strerror)) from None
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=2, sort_keys=False)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise RollbackError("Cannot write the snapshot %s: %s." % (path, error.strerror)) from None


# ---- desired state -----------------------------------------------------------------------------


def given_app_settings(settings, allow_removal):
    """Validate app_settings given as an option: string (or integer) values; null removes in merge mode."""
    desired = {}
    for name, value in (settings or {}).items():
        if value is None:
            if not allow_removal:
                raise RollbackError("app_settings.%s is null: only mode=merge removes a setting with null; "
                                    "with mode=exact leave it out." % name)
            desired[name] = None
        elif isinstance(value, bool) or not isinstance(value, (str, int)):
            # YAML turns on/off/yes/no into booleans; writing "True" instead of "on" is a change nobody asked for.
            raise RollbackError("app_settings.%s is a %s, not a string: quote it (for example '%s')."
                                % (name, type(value).__name__, str(value).lower()))
        else:
            desired[name] = str(value)
    return desired


def given_connection_strings(strings, current, allow_removal):
    """Validate connection_strings given as an option: {name: {value, type}} (type defaults to the current one)."""
    desired = {}
    for name, pair in (strings or {}).items():
        if pair is None:
            if not allow_removal:
                raise RollbackError("connection_strings.%s is null: only mode=merge removes a connection string "
                                    "with null; with mode=exact leave it out." % name)
            desired[name] = None
            continue
        if isinstance(pair, str):
            pair = {"value": pair}
        if not isinstance(pair, dict) or set(pair) - {"value", "type"} or not isinstance(pair.get("value"), str):
            raise RollbackError("connection_strings.%s must be {value: <string>, type: <type>}." % name)
        given = pair.get("type") or (current.get(name) or {}).get("type") or "Custom"
        kind = canonical_type(given)
        if kind is None:
            raise RollbackError("connection_strings.%s has the type %r; App Service knows %s."
                                % (name, given, ", ".join(CONNECTION_STRING_TYPES)))
        desired[name] = dict(value=pair["value"], type=kind)
    return desired


def _merged(current, desired, mode):
    if mode == "exact":
        return {name: value for name, value in desired.items() if value is not None}
    merged = dict(current)
    for name, value in desired.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _sticky(current, desired, mode):
    if mode == "exact":
        return list(desired)
    return list(current) + [name for name in desired if name not in current]


def key_changes(before, after):
    return dict(
        added=sorted(set(after) - set(before)),
        changed=sorted(name for name in set(before) & set(after) if before[name] != after[name]),
        removed=sorted(set(before) - set(after)),
    )


def name_changes(before, after):
    return dict(added=[name for name in after if name not in before],
                removed=[name for name in before if name not in after])


def _has_changes(changes):
    """Whether a (possibly nested) dict of name lists names anything."""
    return any(_has_changes(value) if isinstance(value, dict) else bool(value) for value in changes.values())


# ---- decisions ---------------------------------------------------------------------------------


class AppSettingsRollback:
    """Decide and act for one slot; returns ``(changed, result)`` like every work function."""

    def __init__(self, api, slot, check_mode=False, diff_mode=False, subscription_id=None, clock=None):
        self.api = api
        self.slot = slot
        self.check_mode = check_mode
        self.diff_mode = diff_mode
        self.subscription_id = subscription_id
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def _result(self, configuration):
        return dict(
            resource_group=self.api.resource_group, site=self.api.app, slot=self.slot,
            key_vault_references=configuration.key_vault_references(),
            **configuration.masked()
        )

    def info(self):
        self.api.require_slot(self.slot)
        current = self.api.read(self.slot)
        result = self._result(current)
        result.update(before=current.masked(), after=current.masked())
        return False, result

    def snapshot(self, path, force=False):
        self.api.require_slot(self.slot)
        current = self.api.read(self.slot)
        result = self._result(current)
        result.update(before=current.masked(), after=current.masked())
        existing = self._existing_snapshot(path, force)
        if existing is not None and self._same_configuration(existing.configuration, current):
            # The file already holds exactly this configuration: keep it, with its original taken_at.
            result["snapshot"] = existing.metadata()
            return False, result
        taken_at = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        result["snapshot"] = dict(path=path, resource_group=self.api.resource_group, site=self.api.app,
                                  slot=self.slot, taken_at=taken_at, subscription_id=self.subscription_id)
        if not self.check_mode:
            write_snapshot(path, snapshot_document(current, self.subscription_id, self.api.resource_group,
                                                   self.api.app, self.slot, taken_at))
        return True, result

    def _existing_snapshot(self, path, force):
        """The snapshot already at ``path``, when it is one of this slot; refuse to overwrite anything else."""
        if not os.path.exists(path):
            return None
        try:
            existing = load_snapshot(path)
        except RollbackError as error:
            if force:
                return None
            raise RollbackError("%s It was left as it is; choose another snapshot_path or set force=true to "
                                "overwrite it." % error.message) from None
        if not self._is_this_slot(existing):
            if force:
                return None
            raise RollbackError(
                "snapshot_path %s holds the snapshot of %s; it was left as it is. Choose another snapshot_path or "
                "set force=true to overwrite it." % (path, _describe(existing)))
        return existing

    def _is_this_slot(self, snapshot):
        same_subscription = not (snapshot.subscription_id and self.subscription_id) or \
            snapshot.subscription_id.lower() == self.subscription_id.lower()
        return same_subscription and snapshot.resource_group.lower() == self.api.resource_group.lower() and \
            snapshot.site.lower() == self.api.app.lower() and snapshot.slot.lower() == self.slot.lower()

    @staticmethod
    def _same_configuration(saved, current):
        return (saved.app_settings == current.app_settings and saved.connection_strings == current.connection_strings
                and saved.sticky_app_settings == current.sticky_app_settings
                and saved.sticky_connection_strings == current.sticky_connection_strings)

    def restore(self, snapshot_path=None, app_settings=None, connection_strings=None, mode=None, sections=None,
                force=False, restart=False, health_url=None, wait_timeout=300):
        """Make the slot's settings what the snapshot (or the given dicts) say; write only what differs."""
        from_snapshot = snapshot_path is not None
        if from_snapshot and (app_settings is not None or connection_strings is not None):
            raise RollbackError("Give either snapshot_path or app_settings/connection_strings, not both.")
        if not from_snapshot and app_settings is None and connection_strings is None:
            raise RollbackError("action=restore needs snapshot_path, or app_settings and/or connection_strings.")
        mode = mode or ("exact" if from_snapshot else "merge")
        if mode not in MODES:
            raise RollbackError("mode must be one of %s, not %r." % (", ".join(MODES), mode))
        if restart and health_url:
            _check_health_url(health_url)
        warnings = []
        snapshot = None
        if from_snapshot:
            # Read and validated before any call: a corrupt file costs no API call and changes nothing.
            snapshot = load_snapshot(snapshot_path)
            if not self._is_this_slot(snapshot):
                if not force:
                    raise RollbackError(
                        "snapshot_path %s is the snapshot of %s, not of slot %s of %s in %s. Nothing was changed; "
                        "set force=true to restore it here anyway." % (
                            snapshot_path, _describe(snapshot), self.slot, self.api.app, self.api.resource_group))
                warnings.append("Restoring the snapshot of %s into slot %s of %s (force=true)."
                                % (_describe(snapshot), self.slot, self.api.app))
            sections = list(sections or SECTIONS)
        else:
            if sections:
                raise RollbackError("sections applies to a restore from snapshot_path only; app_settings and "
                                    "connection_strings restore what they name.")
            sections = [name for name, given in (("app_settings", app_settings), ("connection_strings", connection_strings))
                        if given is not None]

        if snapshot is not None:
            desired_settings = snapshot.configuration.app_settings
        else:
            desired_settings = given_app_settings(app_settings, allow_removal=mode == "merge")
        self.api.require_slot(self.slot)
        current = self.api.read(self.slot)
        if snapshot is not None:
            desired_strings = snapshot.configuration.connection_strings
        else:
            # An omitted type keeps the connection string's current type, so it is resolved after the read.
            desired_strings = given_connection_strings(connection_strings, current.connection_strings,
                                                       allow_removal=mode == "merge")

        target = copy.deepcopy(current)
        if "app_settings" in sections:
            target.app_settings = _merged(current.app_settings, desired_settings, mode)
        if "connection_strings" in sections:
            target.connection_strings = _merged(current.connection_strings, desired_strings, mode)
        if "slot_config_names" in sections and snapshot is not None:
            target.sticky_app_settings = _sticky(current.sticky_app_settings,
                                                 snapshot.configuration.sticky_app_settings, mode)
            target.sticky_connection_strings = _sticky(current.sticky_connection_strings,
                                                       snapshot.configuration.sticky_connection_strings, mode)
        self._refuse_bad_values(current, target)

        changes = dict(
            app_settings=key_changes(current.app_settings, target.app_settings),
            connection_strings=key_changes(current.connection_strings, target.connection_strings),
            slot_config_names=dict(
                app_setting_names=name_changes(current.sticky_app_settings, target.sticky_app_settings),
                connection_string_names=name_changes(current.sticky_connection_strings,
                                                     target.sticky_connection_strings),
            ),
        )
        changed = _has_changes(changes)
        result = self._result(target)
        result.update(mode=mode, sections=sections, changes=changes, restarted=bool(changed and restart),
                      before=current.masked(), after=target.masked())
        if snapshot is not None:
            result["snapshot"] = snapshot.metadata()
        if warnings:
            result["warnings"] = warnings
        if self.diff_mode:
            result["diff"] = dict(before=diff_text(current, changes, "before"), after=diff_text(target, changes, "after"))
        if not changed or self.check_mode:
            return changed, result

        # Sticky names first: a setting must already be slot-specific when its slot value is written, so a
        # swap that starts meanwhile cannot carry it to the other slot.
        if _has_changes(changes["slot_config_names"]):
            self.api.write_sticky_names(target.sticky_app_settings, target.sticky_connection_strings,
                                        current.sticky_storage)
        # ARM replaces the whole set on PUT, so the full desired set is sent, and only when it differs.
        if _has_changes(changes["app_settings"]):
            self.api.write_app_settings(self.slot, target.app_settings)
        if _has_changes(changes["connection_strings"]):
            self.api.write_connection_strings(self.slot, target.connection_strings)
        written = self.api.read(self.slot)
        if not self._same_configuration(written, target):
            raise RollbackError("App Service accepted the new settings of slot %s of %s but reads back something "
                                "else; check the slot before retrying." % (self.slot, self.api.app),
                                before=current.masked(), after=written.masked())
        if restart:
            result["restart"] = self.api.restart(self.slot, health_url, wait_timeout)
        return True, result

    def _refuse_bad_values(self, current, target):
        """Names App Service does not accept and malformed Key Vault references fail before any change."""
        bad_names = sorted(name for name in set(target.app_settings) - set(current.app_settings)
                           if not SETTING_NAME.match(name))
        bad_names += sorted("connection string " + name
                            for name in set(target.connection_strings) - set(current.connection_strings)
                            if not SETTING_NAME.match(name))
        if bad_names:
            raise RollbackError(
                "Unknown setting names: %s. App Service setting names contain only letters, digits, periods and "
                "underscores. Nothing was changed." % ", ".join(repr(name) for name in bad_names))
        references = [(name, value) for name, value in target.app_settings.items()
                      if current.app_settings.get(name) != value]
        references += [("connection string " + name, pair["value"]) for name, pair in target.connection_strings.items()
                       if current.connection_strings.get(name) != pair]
        malformed = sorted(name for name, value in references
                           if is_key_vault_reference(value) and not KEY_VAULT_REFERENCE.match(value.strip()))
        if malformed:
            raise RollbackError(
                "Malformed Key Vault references in %s: App Service resolves only @Microsoft.KeyVault(SecretUri=...) "
                "and @Microsoft.KeyVault(VaultName=...;SecretName=...[;SecretVersion=...]). Nothing was changed."
                % ", ".join(malformed))


def diff_text(configuration, changes, side):
    """One line per setting, values masked; a changed value is marked so the diff shows the line."""
    lines = []
    changed_settings = set(changes["app_settings"]["changed"])
    for name, value in sorted(configuration.app_settings.items()):
        mark = " (changed)" if side == "after" and name in changed_settings else ""
        lines.append("app setting %s = %s%s" % (name, shown(value), mark))
    changed_strings = set(changes["connection_strings"]["changed"])
    for name, pair in sorted(configuration.connection_strings.items()):
        mark = " (changed)" if side == "after" and name in changed_strings else ""
        lines.append("connection string %s (%s) = %s%s" % (name, pair["type"], shown(pair["value"]), mark))
    lines.append("slot-specific app settings: %s" % ", ".join(configuration.sticky_app_settings))
    lines.append("slot-specific connection strings: %s" % ", ".join(configuration.sticky_connection_strings))
    return "\n".join(lines) + "\n"


def _describe(snapshot):
    return "slot %s of %s in %s (taken %s)" % (snapshot.slot, snapshot.site, snapshot.resource_group, snapshot.taken_at)


def _check_health_url(url):
    """A malformed health URL fails before any change (the restart would only find it afterwards)."""
    try:
        HealthProbe([url], samples=1)
    except HealthProbeError as error:
        raise RollbackError("health_url: %s. Nothing was changed." % error) from error
