# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Key Vault secret versions: read them, make an older value current, recover a deleted secret.

``KeyVaultSecret`` reads and writes one secret through azure-keyvault-secrets;
``SecretRollback`` decides (is a write needed, which version is "previous")
and never holds a value longer than one comparison.  Values never enter a
result, a message or a diff; they are compared in memory only.

Key Vault's "current" value is the newest version, whatever the ``enabled``
flag of older versions says: re-enabling an old version does not make it
current.  Rolling back therefore writes the old value again as a new version.
Such a version carries the tag ``RESTORED_FROM_TAG`` naming the version it
restores, which is what keeps ``previous`` idempotent: a re-run sees that the
current version already is the restore of the version it would pick.
"""

from __future__ import annotations

import hmac
import time
import traceback
from dataclasses import asdict, dataclass, field
from urllib.parse import urlparse

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import (
    AZURE_IDENTITY_IMPORT_ERROR,
    AzureSettings,
    authentication_failure,
)
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_error_code, arm_error_message
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.keyvault.secrets import SecretClient
except ImportError:
    AZURE_KEYVAULT_IMPORT_ERROR = traceback.format_exc()
    ClientAuthenticationError = HttpResponseError = None
    ServiceRequestError = ServiceResponseError = SecretClient = None
else:
    AZURE_KEYVAULT_IMPORT_ERROR = None

KEYVAULT_LIBRARIES = [("azure-identity", AZURE_IDENTITY_IMPORT_ERROR),
                      ("azure-keyvault-secrets", AZURE_KEYVAULT_IMPORT_ERROR)]

# The tag a rollback write puts on the version it creates: the id of the version whose value it restores.
RESTORED_FROM_TAG = "sre-rollback-restored-from"
# Key Vault allows at most 15 tags on a secret version.
MAX_TAGS = 15
MASK = "(value hidden)"
# How often a recovery is polled until the secret reads again.
RECOVER_POLL_S = 0.5


@dataclass
class VersionInfo:
    """One version of a secret, without its value."""

    version: str
    enabled: bool | None = None
    created: str | None = None
    updated: str | None = None
    not_before: str | None = None
    expires: str | None = None
    content_type: str | None = None
    tags: dict = field(default_factory=dict)
    current: bool = False

    @property
    def restored_from(self):
        return (self.tags or {}).get(RESTORED_FROM_TAG)

    def to_dict(self):
        return asdict(self)


@dataclass
class DeletedInfo:
    deleted_on: str | None = None
    scheduled_purge_date: str | None = None
    recovery_id: str | None = None

    def to_dict(self):
        return asdict(self)


def _iso(value):
    return value.isoformat() if value is not None else None


def version_info(properties):
    return VersionInfo(
        version=properties.version,
        enabled=properties.enabled,
        created=_iso(properties.created_on),
        updated=_iso(properties.updated_on),
        not_before=_iso(properties.not_before),
        expires=_iso(properties.expires_on),
        content_type=properties.content_type,
        tags=dict(properties.tags or {}),
    )


def order_versions(versions):
    """Oldest first, by creation time; the last one is current.

    Key Vault lists versions in no particular order and stamps creation in
    whole seconds, so versions created within one second keep listing order.
    """
    ordered = sorted(enumerate(versions), key=lambda pair: (pair[1].created or "", pair[0]))
    result = [v for _index, v in ordered]
    for info in result:
        info.current = False
    if result:
        result[-1].current = True
    return result


def pick_previous(versions):
    """The version ``previous`` means: the newest enabled version before the current one.

    When the current version was itself written by a rollback (it carries
    RESTORED_FROM_TAG), the rollback already happened: its source is the
    answer again, so a re-run changes nothing.  Returns a VersionInfo or raises.
    """
    if not versions:
        raise RollbackError("The secret has no versions.")
    current = versions[-1]
    if current.restored_from:
        source = next((v for v in versions if v.version == current.restored_from), None)
        if source is not None:
            return source
    earlier = [v for v in versions[:-1] if v.enabled]
    if not earlier:
        raise RollbackError(
            "There is no enabled version before the current one (%s) to roll back to. Versions: %s."
            % (current.version, describe_versions(versions)),
            versions=[v.to_dict() for v in versions],
        )
    return earlier[-1]


def describe_versions(versions):
    return ", ".join("%s (%s%s)" % (v.version, v.created, "" if v.enabled else ", disabled") for v in versions)


def values_equal(left, right):
    """Constant-time comparison, so timing does not hint at a value either."""
    if left is None or right is None:
        return False
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


def restore_tags(source_tags, source_version):
    """Tags of a rollback write: the source version's tags plus the marker naming it."""
    tags = {k: v for k, v in (source_tags or {}).items() if k != RESTORED_FROM_TAG}
    if len(tags) >= MAX_TAGS:
        raise RollbackError(
            "Version %s has %s tags; Key Vault allows %s, and the rollback needs one for %s."
            % (source_version, len(tags), MAX_TAGS, RESTORED_FROM_TAG)
        )
    tags[RESTORED_FROM_TAG] = source_version
    return tags


def validate_vault_url(vault_url):
    parsed = urlparse(vault_url or "")
    if parsed.scheme != "https" or not parsed.netloc:
        raise RollbackError(
            "vault_url must be the https URL of the vault (https://<vault>.vault.azure.net/), not %r." % vault_url
        )
    if parsed.path not in ("", "/"):
        raise RollbackError("vault_url must be the vault's URL without a path, not %r." % vault_url)
    return vault_url.rstrip("/") + "/"


class KeyVaultError(RollbackError):
    """A Key Vault call failed; ``code`` is Key Vault's error code (SecretNotFound, Forbidden...)."""

    def __init__(self, message, code=None, status=None, **details):
        super().__init__(message, **details)
        self.code = code
        self.status = status


class _KeyVaultCall:
    """Context manager translating azure-core errors of Key Vault calls into KeyVaultError."""

    def __init__(self, what, vault_url):
        self.what = what
        self.vault_url = vault_url

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, tb):
        if error is None or ClientAuthenticationError is None or isinstance(error, RollbackError):
            return False
        if isinstance(error, ClientAuthenticationError):
            raise authentication_failure(error) from error
        if isinstance(error, HttpResponseError):
            code = arm_error_code(error)
            message = arm_error_message(error)
            if error.status_code == 403:
                message += (" The identity needs the matching secret permission in the vault's access policy, "
                            "or an RBAC role such as Key Vault Secrets Officer.")
            raise KeyVaultError("%s failed: HTTP %s %s: %s" % (self.what, error.status_code, code, message),
                                code=code, status=error.status_code) from error
        if isinstance(error, ServiceResponseError):
            raise KeyVaultError(
                "%s failed: the vault %s did not answer (%s). Check the current state before repeating a change."
                % (self.what, self.vault_url, str(error).splitlines()[0])) from error
        if isinstance(error, ServiceRequestError):
            raise KeyVaultError(
                "%s failed: cannot reach the vault %s (%s). Check vault_url, the network and the CA bundle "
                "(REQUESTS_CA_BUNDLE)." % (self.what, self.vault_url, str(error).splitlines()[0])) from error
        if isinstance(error, ValueError) and "challenge resource" in str(error):
            raise KeyVaultError(
                "%s failed: %s The vault answered for a different resource than its URL." % (self.what, error)
            ) from error
        return False


class KeyVaultSecret:
    """One secret in one vault, through azure-keyvault-secrets' SecretClient."""

    def __init__(self, client, vault_url, name):
        self.client = client
        self.vault_url = vault_url
        self.name = name

    @classmethod
    def connect(cls, settings, vault_url, name):
        vault_url = validate_vault_url(vault_url)
        kwargs = settings.client_kwargs()
        # SecretClient takes the vault URL instead of ARM's base_url, and learns its token scope from the
        # vault's 401 challenge (the vault resource, not ARM), so both ARM settings are dropped.
        kwargs.pop("base_url", None)
        kwargs.pop("credential_scopes", None)
        client = SecretClient(vault_url, settings.credential(), **kwargs)
        return cls(client, vault_url, name)

    @classmethod
    def from_params(cls, params):
        # The data plane needs no subscription, only the credential.
        settings = AzureSettings.from_params(params, require_subscription=False)
        return cls.connect(settings, params["vault_url"], params["name"])

    def _call(self, what):
        return _KeyVaultCall(what, self.vault_url)

    # ---- reads -------------------------------------------------------------------
    def versions(self):
        """Every version (no values), oldest first; None when the secret does not exist."""
        try:
            with self._call("Listing the versions of secret %s" % self.name):
                listed = [version_info(p) for p in self.client.list_properties_of_secret_versions(self.name)]
        except KeyVaultError as error:
            if error.code == "SecretNotFound" or error.status == 404:
                return None
            raise
        return order_versions(listed) if listed else None

    def deleted(self):
        """DeletedInfo when the secret is soft-deleted, else None."""
        try:
            with self._call("Reading deleted secret %s" % self.name):
                deleted = self.client.get_deleted_secret(self.name)
        except KeyVaultError as error:
            if error.status == 404:
                return None
            raise
        return DeletedInfo(_iso(deleted.deleted_date), _iso(deleted.scheduled_purge_date), deleted.recovery_id)

    def value_of(self, version=None):
        """The value of ``version`` (current when None); None when that version is disabled."""
        try:
            with self._call("Reading secret %s%s" % (self.name, " version %s" % version if version else "")):
                return self.client.get_secret(self.name, version).value
        except KeyVaultError as error:
            if error.status == 403 and "disabled" in error.message.lower():
                return None
            raise

    # ---- writes ------------------------------------------------------------------
    def write(self, value, content_type=None, tags=None):
        """Write ``value`` as a new (current) version; returns its VersionInfo."""
        with self._call("Writing a new version of secret %s" % self.name):
            written = self.client.set_secret(self.name, value, content_type=content_type, tags=tags or None)
        return version_info(written.properties)

    def recover(self, timeout_s):
        """Recover the deleted secret and wait until it reads again; returns the seconds it took."""
        started = time.monotonic()
        with self._call("Recovering deleted secret %s" % self.name):
            self.client.begin_recover_deleted_secret(self.name)
        while True:
            try:
                with self._call("Reading recovered secret %s" % self.name):
                    self.client.get_secret(self.name)
                break
            except KeyVaultError as error:
                # 403 "disabled" means the secret exists again; its newest version is just disabled.
                if error.status == 403 and "disabled" in error.message.lower():
                    break
                if error.status != 404:
                    raise
            if time.monotonic() - started > timeout_s:
                raise RollbackError(
                    "Secret %s was being recovered but did not become readable within %s s; Key Vault may "
                    "still finish the recovery." % (self.name, timeout_s), state="recovering")
            time.sleep(RECOVER_POLL_S)
        return round(time.monotonic() - started, 2)


class SecretRollback:
    """Decide and act for keyvault_secret_rollback: info, make a value current, or recover."""

    def __init__(self, secret, check_mode=False, diff_mode=False):
        self.secret = secret
        self.check_mode = check_mode
        self.diff_mode = diff_mode

    def _base(self, versions, deleted=None):
        return dict(
            vault_url=self.secret.vault_url,
            name=self.secret.name,
            versions=[v.to_dict() for v in versions or []],
            current_version=versions[-1].version if versions else None,
            deleted=deleted.to_dict() if deleted else None,
            target_version=None,
            written_version=None,
        )

    @staticmethod
    def _summary(versions, deleted=None, value_of_version=None):
        if versions:
            current = versions[-1]
            summary = dict(state="present", current_version=current.version, enabled=current.enabled,
                           content_type=current.content_type, tags=dict(current.tags),
                           value=MASK)
        else:
            summary = dict(state="deleted" if deleted else "absent", current_version=None)
        if value_of_version:
            summary["value_of_version"] = value_of_version
        return summary

    def _missing(self, wanted_state):
        deleted = self.secret.deleted()
        if deleted:
            raise RollbackError(
                "Secret '%s' is deleted (soft-deleted on %s, purged on %s); recover it first with state: recovered%s."
                % (self.secret.name, deleted.deleted_on, deleted.scheduled_purge_date,
                   "" if wanted_state == "recovered" else ", then run this task again"),
                deleted=deleted.to_dict())
        raise RollbackError("Secret '%s' does not exist in vault %s (not even as a deleted secret)."
                            % (self.secret.name, self.secret.vault_url))

    # ---- state: info -------------------------------------------------------------------
    def info(self):
        versions = self.secret.versions()
        deleted = None if versions else self.secret.deleted()
        result = self._base(versions, deleted)
        result["before"] = result["after"] = self._summary(versions, deleted)
        return False, result

    # ---- state: recovered ---------------------------------------------------------------
    def recovered(self, timeout_s):
        versions = self.secret.versions()
        if versions:
            result = self._base(versions)
            result["before"] = result["after"] = self._summary(versions)
            result["recovered_after_s"] = None
            return False, result
        deleted = self.secret.deleted()
        if deleted is None:
            self._missing("recovered")
        result = self._base(None, deleted)
        result["before"] = self._summary(None, deleted)
        result["recovered_after_s"] = None
        if self.check_mode:
            result["after"] = dict(state="present", current_version=None)
            self._diff(result)
            return True, result
        result["recovered_after_s"] = self.secret.recover(timeout_s)
        versions = self.secret.versions() or []
        result.update(versions=[v.to_dict() for v in versions],
                      current_version=versions[-1].version if versions else None)
        result["after"] = self._summary(versions)
        self._diff(result)
        return True, result

    # ---- state: present ----------------------------------------------------------------
    def make_current(self, version=None, previous=False, value=None, content_type=None, tags=None,
                     return_value=False):
        """Make the value of ``version`` / the previous version / ``value`` the current one."""
        versions = self.secret.versions()
        if versions is None and value is None:
            self._missing("present")
        if versions is None:
            # Setting a value creates the secret, as `az keyvault secret set` does; but a deleted
            # secret's name cannot be reused (Key Vault answers 409), so say so before trying.
            deleted = self.secret.deleted()
            if deleted:
                self._missing("present")
        result = self._base(versions)
        result["before"] = self._summary(versions)

        if value is not None:
            target = None
            wanted = value
            new_content_type = content_type if content_type is not None else (
                versions[-1].content_type if versions else None)
            new_tags = dict(tags) if tags is not None else (dict(versions[-1].tags) if versions else {})
            new_tags.pop(RESTORED_FROM_TAG, None)
        else:
            target = self._target(versions, version, previous)
            result["target_version"] = target.version
            wanted = self.secret.value_of(target.version)
            if wanted is None:
                raise RollbackError(
                    "Version %s of secret '%s' is disabled, and Key Vault does not return the value of a disabled "
                    "version. Enable it first (az keyvault secret set-attributes --enabled true) or name another "
                    "version." % (target.version, self.secret.name), versions=result["versions"])
            new_content_type = target.content_type
            new_tags = restore_tags(target.tags, target.version)

        current_value = self.secret.value_of() if versions else None
        if values_equal(current_value, wanted):
            result["after"] = result["before"]
            result["secret_value"] = self._returned(return_value, wanted)
            return False, result

        if self.check_mode:
            result["after"] = dict(state="present", current_version=None, enabled=True,
                                   content_type=new_content_type, tags=new_tags, value=MASK,
                                   value_of_version=target.version if target else None)
            result["secret_value"] = self._returned(return_value, wanted)
            self._diff(result)
            return True, result

        written = self.secret.write(wanted, content_type=new_content_type, tags=new_tags)
        result["written_version"] = written.version
        versions = self.secret.versions() or [written]
        result.update(versions=[v.to_dict() for v in versions], current_version=versions[-1].version)
        result["after"] = self._summary(versions, value_of_version=target.version if target else None)
        result["secret_value"] = self._returned(return_value, wanted)
        self._diff(result)
        return True, result

    def _target(self, versions, version, previous):
        if previous:
            return pick_previous(versions)
        found = next((v for v in versions if v.version.lower() == str(version).strip().lower()), None)
        if found is None:
            raise RollbackError(
                "Secret '%s' has no version %s. Its versions (oldest first): %s."
                % (self.secret.name, version, describe_versions(versions)),
                versions=[v.to_dict() for v in versions])
        return found

    @staticmethod
    def _returned(return_value, value):
        return value if return_value else None

    def _diff(self, result):
        if self.diff_mode:
            result["diff"] = dict(before=_diff_text(result["before"]), after=_diff_text(result["after"]))


def _diff_text(summary):
    lines = []
    for key in ("state", "current_version", "value_of_version", "enabled", "content_type", "value"):
        if key in summary:
            shown = summary[key]
            if shown is None and key == "current_version":
                shown = "(a new version)"
            lines.append("%s: %s" % (key, shown))
    for key, value in sorted((summary.get("tags") or {}).items()):
        lines.append("tag %s: %s" % (key, value))
    return "\n".join(lines) + "\n"
