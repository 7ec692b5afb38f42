"""Azure Key Vault (secrets data plane) provider of the sandbox.

Every seeded vault gets its own HTTPS port (see dataplane.py for the REST
surface and the challenge authentication the SDK expects). Vault URLs are
exported as `SRE_SANDBOX_KEYVAULT_<VAULT>_URL` (`<VAULT>` upper-cased, `-` → `_`).

Admin API (under /_sandbox/, never faulted or logged):

  GET        /_sandbox/keyvault                     vaults, secrets, versions (with values: it is a sandbox),
                                                    deleted secrets, settings
  GET/DELETE /_sandbox/keyvault/calls               {"calls": [{time, vault, method, path, query, status, fault}]}
  GET/PUT    /_sandbox/keyvault/settings            {"transition_s": 0.5}: how long a delete or recover takes
  PUT        /_sandbox/keyvault/vaults/{vault}/permissions
                                                    {"secrets": ["get", "list", ...]}: the sandbox identity's
                                                    secret permissions in that vault (others answer 403)

Faults: `/_sandbox/faults` applies to the vault ports as well (matched on the
data-plane path, e.g. `"path": "/secrets/database-url$"`).
"""

from ..calls import CallLog
from ..settings import AdminSettings
from ..web import BadJson, Response
from ..core import iso, utcnow
from . import model
from .dataplane import DataPlane


DEFAULT_SETTINGS = {"transition_s": 0.5}


class KeyVaultProvider:
    name = "keyvault"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.identity = arm.identity
        self.faults = faults
        self.settings = AdminSettings(sandbox, "keyvault", DEFAULT_SETTINGS)
        self.calls = CallLog(sandbox, "keyvault")
        self.state = model.KeyVaultState(sandbox.seed_section(self.name))
        self.dataplane = DataPlane(sandbox, self)
        self.dataplane.ensure_hosts()
        add = sandbox.admin.add
        add("GET", r"/_sandbox/keyvault", self._admin_state)
        add("PUT", r"/_sandbox/keyvault/vaults/(?P<vault>[^/]+)/permissions", self._admin_permissions)
        sandbox.on_reset(self._reset)

    def _reset(self):
        self.dataplane.cancel_timers()
        self.state = model.KeyVaultState(self.sandbox.seed_section(self.name))
        self.dataplane.ensure_hosts()
        self.settings.reset()
        self.calls.clear()

    # -- used by the data plane ----------------------------------------------------------
    def token_info(self, token):
        """{"audience", "expires_at"} of a token the sandbox identity issued, else None."""
        return self.identity.token_info(token)

    def record_call(self, vault, request, status, fault):
        with self.sandbox.lock:
            self.calls.append({"time": iso(utcnow()), "vault": vault, "method": request.method,
                               "path": request.path, "query": request.raw_query, "status": status, "fault": fault})

    # -- admin ---------------------------------------------------------------------------
    def _admin_state(self, request):
        with self.sandbox.lock:
            return Response.json(self.snapshot())

    def _admin_permissions(self, request):
        try:
            body = request.json() or {}
            wanted = body["secrets"]
            unknown = set(wanted) - set(model.PERMISSIONS)
            if unknown:
                raise ValueError(f"unknown permissions {sorted(unknown)}; known: {list(model.PERMISSIONS)}")
        except (BadJson, KeyError, TypeError, ValueError) as err:
            return Response.json({"error": f'expected {{"secrets": [...]}}: {err}'}, 400)
        with self.sandbox.lock:
            vault = self.state.vault(request.params["vault"])
            if vault is None:
                return Response.json({"error": f"no vault {request.params['vault']}"}, 404)
            vault.permissions = set(wanted)
            return Response.json({"vault": vault.name, "secrets": sorted(vault.permissions)})

    # -- provider interface ------------------------------------------------------------
    def snapshot(self):
        vaults = []
        for vault in self.state.vaults.values():
            def versions(secret):
                return [{"version": v.id, "value": v.value, "content_type": v.content_type, "tags": dict(v.tags),
                         "enabled": v.enabled, "created": v.created, "updated": v.updated,
                         "not_before": v.not_before, "expires": v.expires} for v in secret.versions]
            vaults.append({
                "name": vault.name,
                "url": f"https://{vault.host}",
                "permissions": sorted(vault.permissions),
                "purge_protection": vault.purge_protection,
                "secrets": {s.name: {"current": s.current.id if s.current else None, "versions": versions(s)}
                            for s in vault.secrets.values()},
                "deleted_secrets": {d.secret.name: {"deleted": d.deleted, "versions": versions(d.secret)}
                                    for d in vault.deleted.values()},
                "in_transition": sorted(vault.in_transition),
            })
        return {"vaults": vaults, "settings": dict(self.settings)}

    def env(self):
        with self.sandbox.lock:
            return {"SRE_SANDBOX_KEYVAULT_%s_URL" % v.name.upper().replace("-", "_"): f"https://{v.host}/"
                    for v in self.state.vaults.values()}

    def stop(self):
        self.dataplane.cancel_timers()
        self.dataplane.stop()
