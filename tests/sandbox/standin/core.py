"""The shared context every part of the sandbox works against.

One `Sandbox` per server process. It owns the single state lock (requests are
served on many threads, and swaps complete on timer threads), the seed, the
runtime settings, the ARM call log, and the two routers: the public one
(identity + ARM, faults apply, calls are logged) and the admin one
(`/_sandbox/...`, no auth, never faulted or logged).
"""

import copy
import datetime
import glob
import json
import os
import threading

from .web import Router

DEFAULT_SETTINGS = {
    # How long a slot swap stays InProgress before it completes.
    "swap_duration_s": 1.5,
    # Retry-After sent with 202s of long-running operations. azure-core uses it
    # instead of polling_interval when it is non-zero, so tests may set 0.
    "lro_retry_after_s": 1,
    # Lifetime of issued access tokens (expires_in).
    "token_lifetime_s": 3599,
}


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(ts):
    """ARM-style UTC timestamp."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if ts else None


def load_seed(seed_dir):
    """Merge every seed/*.json: shared identity keys at top level, one section per provider.

    Later providers ship their own seed file (e.g. seed/keyvault.json) with a
    section named after the provider and, if needed, more resource_groups.
    """
    merged = {"resource_groups": []}
    shared = ("subscription_id", "tenant_id", "client_id", "client_secret")
    for path in sorted(glob.glob(os.path.join(seed_dir, "*.json"))):
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        for key, value in data.items():
            if key in shared:
                if key in merged and merged[key] != value:
                    raise ValueError(f"{path}: {key} conflicts with another seed file")
                merged[key] = value
            elif key == "resource_groups":
                merged["resource_groups"].extend(value)
            else:
                merged.setdefault(key, {}).update(value)
    missing = [k for k in shared if k not in merged]
    if missing:
        raise ValueError(f"seed in {seed_dir} lacks {', '.join(missing)}")
    return merged


class Sandbox:
    def __init__(self, seed, ssl_context, ca_path):
        self.seed = seed
        self.ssl_context = ssl_context
        self.ca_path = ca_path
        self.lock = threading.RLock()
        self.settings = dict(DEFAULT_SETTINGS)
        self.public = Router(ignore_case=True)
        self.admin = Router()
        self.base_url = None  # https://127.0.0.1:PORT, known once the main port is bound
        self.calls = []
        self.providers = []
        # Named callbacks one stand-in offers another (e.g. "static_site_deploy", which the
        # GitHub stand-in calls when a deploy workflow run succeeds). Look up with .get():
        # a provider may be absent.
        self.hooks = {}
        # Parts that must go back to seed state on /_sandbox/reset register here.
        self._reset_hooks = []

    # -- identity of the sandbox tenant ------------------------------------------------
    @property
    def subscription_id(self):
        return self.seed["subscription_id"]

    @property
    def tenant_id(self):
        return self.seed["tenant_id"]

    def seed_section(self, name):
        """A deep copy, so providers can mutate their state freely."""
        return copy.deepcopy(self.seed.get(name, {}))

    # -- lifecycle ---------------------------------------------------------------------
    def on_reset(self, hook):
        self._reset_hooks.append(hook)

    def reset(self):
        with self.lock:
            self.settings = dict(DEFAULT_SETTINGS)
            self.calls.clear()
            for hook in self._reset_hooks:
                hook()

    # -- call log ----------------------------------------------------------------------
    def record_call(self, request, status, fault=None):
        with self.lock:
            self.calls.append({
                "time": iso(utcnow()),
                "method": request.method,
                "path": request.path,
                "query": request.raw_query,
                "status": status,
                "fault": fault,
            })
