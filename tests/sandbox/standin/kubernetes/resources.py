"""The kinds the stand-in serves, and what discovery says about them.

Each entry is what `kubectl api-resources` shows for it on a real cluster (names, short names,
verbs, namespaced, subresources), so discovery-driven clients (kubectl's REST mapper, the scale
client, Helm's capabilities) resolve them as they would against a real API server.
"""

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class Resource:
    def __init__(self, group, version, plural, kind, namespaced=True, short_names=(), subresources=(),
                 has_generation=False, categories=(), field_selectors=()):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.subresources = tuple(subresources)
        self.has_generation = has_generation
        self.categories = list(categories)
        # Fields the real server accepts in fieldSelector for this kind (besides metadata.name/namespace).
        self.field_selectors = ("metadata.name", "metadata.namespace") + tuple(field_selectors)

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self):
        """Store key: `apps/deployments`, `pods` for the core group."""
        return f"{self.group}/{self.plural}" if self.group else self.plural

    @property
    def qualified(self):
        """How error messages name it: `deployments.apps`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self):
        return self.kind.lower()


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=["ns"],
             subresources=("status",), field_selectors=("status.phase",)),
    Resource("", "v1", "pods", "Pod", short_names=["po"], subresources=("status",), categories=["all"],
             field_selectors=("spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
                              "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName")),
    Resource("", "v1", "services", "Service", short_names=["svc"], subresources=("status",), categories=["all"]),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=["cm"]),
    Resource("", "v1", "secrets", "Secret", field_selectors=("type",)),
    Resource("", "v1", "events", "Event", short_names=["ev"],
             field_selectors=("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")),
    Resource("", "v1", "nodes", "Node", namespaced=False, short_names=["no"], subresources=("status",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", short_names=["sa"]),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=["pvc"],
             subresources=("status",)),
    Resource("apps", "v1", "deployments", "Deployment", short_names=["deploy"], subresources=("scale", "status"),
             has_generation=True, categories=["all"]),
    Resource("apps", "v1", "replicasets", "ReplicaSet", short_names=["rs"], subresources=("scale", "status"),
             has_generation=True, categories=["all"]),
    Resource("apps", "v1", "statefulsets", "StatefulSet", short_names=["sts"], subresources=("scale", "status"),
             has_generation=True, categories=["all"]),
    Resource("apps", "v1", "daemonsets", "DaemonSet", short_names=["ds"], subresources=("status",),
             has_generation=True, categories=["all"]),
    Resource("apps", "v1", "controllerrevisions", "ControllerRevision"),
    # Kinds charts commonly carry next to their workloads: stored and served, no controller behind them.
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=["ing"], subresources=("status",),
             has_generation=True),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=["pdb"],
             subresources=("status",), has_generation=True),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=["hpa"],
             subresources=("status",), categories=["all"]),
    # Leases: what a controller (or sre.rollback.rollback_lock) holds to act alone; no controller behind them.
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
]

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.group, r.kind): r for r in RESOURCES}
GROUPS = {"": ["v1"], "apps": ["v1"], "autoscaling": ["v2"], "networking.k8s.io": ["v1"], "policy": ["v1"],
          "coordination.k8s.io": ["v1"]}


def lookup(group, version, plural):
    return BY_PATH.get((group, version, plural))


def by_kind(api_version, kind):
    group = api_version.split("/")[0] if "/" in (api_version or "") else ""
    return BY_KIND.get((group, kind))


def api_resource_list(group, version):
    """/api/v1 or /apis/<group>/<version> (metav1.APIResourceList)."""
    group_version = f"{group}/{version}" if group else version
    entries = []
    for res in RESOURCES:
        if (res.group, res.version) != (group, version):
            continue
        entry = {"name": res.plural, "singularName": res.singular, "namespaced": res.namespaced, "kind": res.kind,
                 "verbs": list(VERBS)}
        if res.short_names:
            entry["shortNames"] = res.short_names
        if res.categories:
            entry["categories"] = res.categories
        entries.append(entry)
        for sub in res.subresources:
            if sub == "scale":
                entries.append({"name": f"{res.plural}/scale", "singularName": "", "namespaced": True,
                                "group": "autoscaling", "version": "v1", "kind": "Scale",
                                "verbs": ["get", "patch", "update"]})
            else:
                entries.append({"name": f"{res.plural}/{sub}", "singularName": "", "namespaced": res.namespaced,
                                "kind": res.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}


def api_group(name):
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUPS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list():
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(g) for g in GROUPS if g]}


def aggregated_discovery(core):
    """apidiscovery.k8s.io/v2 APIGroupDiscoveryList: for /api (core=True) or /apis."""
    items = []
    for group, versions in GROUPS.items():
        if (group == "") != core:
            continue
        version_items = []
        for version in versions:
            resources = []
            for res in RESOURCES:
                if (res.group, res.version) != (group, version):
                    continue
                kind = {"group": res.group, "version": res.version, "kind": res.kind}
                entry = {"resource": res.plural, "responseKind": kind,
                         "scope": "Namespaced" if res.namespaced else "Cluster", "singularResource": res.singular,
                         "verbs": list(VERBS)}
                if res.short_names:
                    entry["shortNames"] = res.short_names
                if res.categories:
                    entry["categories"] = res.categories
                subs = []
                for sub in res.subresources:
                    kind = ({"group": "autoscaling", "version": "v1", "kind": "Scale"} if sub == "scale"
                            else {"group": res.group, "version": res.version, "kind": res.kind})
                    subs.append({"subresource": sub, "responseKind": kind, "verbs": ["get", "patch", "update"]})
                if subs:
                    entry["subresources"] = subs
                resources.append(entry)
            version_items.append({"version": version, "resources": resources, "freshness": "Current"})
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": version_items})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}
