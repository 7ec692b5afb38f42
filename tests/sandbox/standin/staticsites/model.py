"""Static Web Apps state: sites, their environments, and what each environment serves.

A Static Web App has no slots. It has environments ("builds" in ARM): `default`
is production, the others are preview environments made for pull requests or
branches. Each environment serves the last build deployed into it; rolling a
Static Web App back therefore means deploying the previous version again (or,
for a preview environment, deleting it).

Every deploy is recorded per environment, so a test can see what an
environment served and when (`history`). Everything here runs under the
sandbox lock, so no locking is done in this module.
"""

from ..core import iso, utcnow

DEFAULT = "default"
# Names a deploy may use for production, besides "default": the GitHub deploy
# action's empty `deployment_environment`, and the word people use.
PRODUCTION_ALIASES = ("", "default", "production")

READY = "Ready"
DELETING = "Deleting"
WAITING = "WaitingForDeployment"
STATUSES = ("WaitingForDeployment", "Uploading", "Deploying", "Ready", "Failed", "Deleting", "Detached")


def environment_name(name):
    """The ARM build name for what a deploy calls an environment."""
    if name is None or str(name).strip().lower() in PRODUCTION_ALIASES:
        return DEFAULT
    return str(name).strip()


class Environment:
    def __init__(self, site, name, seed):
        self.site = site
        self.name = name
        self.source_branch = seed.get("source_branch", site.branch if name == DEFAULT else name)
        self.pull_request_title = seed.get("pull_request_title")
        now = iso(utcnow())
        self.created = seed.get("created_time_utc", now)
        self.status = seed.get("status", READY)
        if self.status not in STATUSES:
            raise ValueError(f"environment {site.name}/{name}: status {self.status!r} not one of {STATUSES}")
        # [{version, commit, deployed_at, source}], oldest first; the last one is served.
        self.history = [dict(d, source=d.get("source", "seed")) for d in seed.get("history", [])]
        self.last_updated = self.history[-1]["deployed_at"] if self.history else self.created
        self.host = None  # "127.0.0.1:PORT", assigned by the data plane

    @property
    def is_production(self):
        return self.name == DEFAULT

    @property
    def current(self):
        """The deploy this environment serves, or None before the first one (or after a delete of production)."""
        if not self.history or self.history[-1].get("deleted"):
            return None
        return self.history[-1]

    def deploy(self, version, commit, source):
        record = {"version": str(version), "commit": commit, "deployed_at": iso(utcnow()), "source": source}
        self.history.append(record)
        self.status = READY
        self.last_updated = record["deployed_at"]
        return record

    def clear_content(self):
        """What deleting the production environment does: the site stays, its content goes."""
        now = iso(utcnow())
        self.history.append({"version": None, "commit": None, "deployed_at": now, "source": "delete",
                             "deleted": True})
        self.status = WAITING
        self.last_updated = now


class StaticSite:
    def __init__(self, seed):
        self.resource_group = seed["resource_group"]
        self.name = seed["name"]
        self.location = seed.get("location", "West Europe")
        self.sku = seed.get("sku", "Standard")
        self.tags = dict(seed.get("tags", {}))
        self.repository_url = seed.get("repository_url")
        self.branch = seed.get("branch", "main")
        self.provider = seed.get("provider", "GitHub")
        self.staging_environment_policy = seed.get("staging_environment_policy", "Enabled")
        self.environments = {}  # lower-cased name -> Environment; insertion order, default first
        envs = dict(seed.get("environments", {}))
        envs.setdefault(DEFAULT, {})
        for name in [DEFAULT] + [n for n in envs if n != DEFAULT]:
            self.environments[name.lower()] = Environment(self, name, envs[name])
        # Environments whose delete operation is running (lower-cased names).
        self.deleting = set()

    def environment(self, name):
        return self.environments.get(str(name).lower())

    def add_environment(self, name, **seed):
        env = Environment(self, name, seed)
        self.environments[name.lower()] = env
        return env

    def remove_environment(self, env):
        self.environments.pop(env.name.lower(), None)

    @property
    def default(self):
        return self.environments[DEFAULT]


class StaticSitesState:
    def __init__(self, seed):
        self.sites = {}  # (rg lower, name lower) -> StaticSite
        for site_seed in seed.get("sites", []):
            site = StaticSite(site_seed)
            self.sites[(site.resource_group.lower(), site.name.lower())] = site

    def site(self, resource_group, name):
        return self.sites.get((resource_group.lower(), name.lower()))

    def sites_in(self, resource_group):
        return [s for (rg, _name), s in self.sites.items() if rg == resource_group.lower()]

    def by_name(self, name):
        """A site by name alone (what a deploy token identifies); None when unknown or ambiguous."""
        found = [s for (_rg, n), s in self.sites.items() if n == str(name).lower()]
        return found[0] if len(found) == 1 else None

    def all_environments(self):
        for site in self.sites.values():
            for env in site.environments.values():
                yield site, env
