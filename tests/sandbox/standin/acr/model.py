"""Azure Container Registry state: registries, repositories, tags, manifests.

A tag points at a manifest (by digest); several tags may share one (``latest``
and ``1.3.0``). Digests are the sha256 of a small image manifest the sandbox
builds per seeded image, so they are stable across restarts and resets.

A tag may be marked ``bad``: the image exists and pulls, but the app built
from it answers unhealthy (what the App Service stand-in serves for it).

Everything here runs under the sandbox lock; no locking in this module.
"""

import datetime
import hashlib
import json

LIST_PAGE_DEFAULT = 100  # ACR's page size when the client does not send n


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def acr_time(ts):
    """ACR answers times with 7 fractional digits and a Z."""
    return ts.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


class Manifest:
    def __init__(self, repository, seed_tag):
        body = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": "sha256:" + hashlib.sha256(
                           f"{repository}:{seed_tag['image_id']}:config".encode()).hexdigest(),
                       "size": 1470},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "digest": "sha256:" + hashlib.sha256(
                            f"{repository}:{seed_tag['image_id']}:layer".encode()).hexdigest(),
                        "size": int(seed_tag.get("size", 48_000_000))}],
        }
        self.body = json.dumps(body, separators=(",", ":")).encode()
        self.digest = "sha256:" + hashlib.sha256(self.body).hexdigest()
        self.size = int(seed_tag.get("size", 48_000_000))
        self.created = parse_time(seed_tag["created"])
        self.updated = parse_time(seed_tag.get("updated") or seed_tag["created"])
        self.bad = bool(seed_tag.get("bad", False))


class Repository:
    def __init__(self, name, seed):
        self.name = name
        self.tags = {}        # tag -> {"digest", "created", "updated"}
        self.manifests = {}   # digest -> Manifest
        for seed_tag in seed.get("tags", []):
            # Tags naming the same image_id share one manifest (e.g. latest).
            seed_tag = dict(seed_tag)
            seed_tag.setdefault("image_id", seed_tag["name"])
            manifest = Manifest(name, seed_tag)
            manifest = self.manifests.setdefault(manifest.digest, manifest)
            manifest.bad = manifest.bad or bool(seed_tag.get("bad", False))
            created = parse_time(seed_tag["created"])
            updated = parse_time(seed_tag.get("updated") or seed_tag["created"])
            self.tags[seed_tag["name"]] = {"digest": manifest.digest, "created": created, "updated": updated}

    @property
    def created(self):
        return min((t["created"] for t in self.tags.values()), default=None)

    @property
    def updated(self):
        return max((t["updated"] for t in self.tags.values()), default=None)

    def tag_names(self, orderby=None):
        """Names in listing order: lexical by default, or by last update (timedesc / timeasc)."""
        if orderby in ("timedesc", "timeasc"):
            return sorted(self.tags, key=lambda n: (self.tags[n]["updated"], n), reverse=orderby == "timedesc")
        return sorted(self.tags)

    def tags_of(self, digest):
        return sorted(n for n, t in self.tags.items() if t["digest"] == digest)


class Registry:
    def __init__(self, seed):
        self.name = seed["name"]
        self.resource_group = seed["resource_group"]
        self.location = seed.get("location", "westeurope")
        self.sku = seed.get("sku", "Standard")
        self.tags = dict(seed.get("tags", {}))
        self.created = parse_time(seed.get("created", "2024-11-01T08:00:00Z"))
        # Whether the sandbox identity holds a pull role (AcrPull / Reader) on the registry.
        self.identity_can_pull = bool(seed.get("identity_can_pull", True))
        self.repositories = {name: Repository(name, repo) for name, repo in seed.get("repositories", {}).items()}
        self.login_server = None  # 127.0.0.1:PORT, set by the data plane

    def repository(self, name):
        return self.repositories.get(name)


class AcrState:
    def __init__(self, seed):
        self.registries = {}
        for reg_seed in seed.get("registries", []):
            registry = Registry(reg_seed)
            self.registries[registry.name.lower()] = registry

    def registry(self, name):
        return self.registries.get((name or "").lower())

    def by_login_server(self, host):
        return next((r for r in self.registries.values() if r.login_server == host), None)


def page(names, n, last):
    """One page of `names` after `last` (ACR's `last` + `n` paging); returns (page, more)."""
    start = 0
    if last:
        start = names.index(last) + 1 if last in names else len([x for x in names if x <= last])
    size = n if n and n > 0 else LIST_PAGE_DEFAULT
    chunk = names[start:start + size]
    return chunk, start + size < len(names)
