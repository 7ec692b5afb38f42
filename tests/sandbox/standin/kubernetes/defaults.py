"""What the real API server fills in and refuses on write (pkg/apis/*/v1/defaults.go, validation).

Defaulting matters for rollback: the controllers and kubectl compare pod templates as stored, so
a template written by a patch must end up exactly like one written by a create.
"""

import base64
import datetime
import ipaddress
import re

from .store import ApiError, invalid

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            image = container.get("image") or ""
            tag = image.rsplit("/", 1)[-1]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
    return spec


def default_template(template):
    template.setdefault("metadata", {})
    template["metadata"].setdefault("creationTimestamp", None)
    default_pod_spec(template.setdefault("spec", {}))
    return template


def apply_defaults(res, obj, cluster):
    spec = obj.get("spec")
    kind = res.kind
    if kind == "Deployment":
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        default_template(spec.setdefault("template", {}))
        obj.setdefault("status", {})
    elif kind == "ReplicaSet":
        spec.setdefault("replicas", 1)
        default_template(spec.setdefault("template", {}))
        obj.setdefault("status", {"replicas": 0})
    elif kind == "StatefulSet":
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
        spec.setdefault("serviceName", "")
        default_template(spec.setdefault("template", {}))
        obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})
    elif kind == "DaemonSet":
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        default_template(spec.setdefault("template", {}))
        obj.setdefault("status", {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                  "desiredNumberScheduled": 0, "numberReady": 0})
    elif kind == "Pod":
        default_pod_spec(obj.setdefault("spec", {}))
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = cluster.allocate_cluster_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif kind == "Secret":
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) if string_data else obj.get("data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj.setdefault("type", "Opaque")
    elif kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif kind == "Lease":
        spec = obj.setdefault("spec", {})
        for field in ("acquireTime", "renewTime"):
            if spec.get(field) is not None:
                spec[field] = _micro_time(spec[field], kind)
    return obj


# metav1.MicroTime: parsed with RFC3339Micro (exactly six fractional digits; a time without them, as the
# Python client's isoformat() writes when microseconds are 0, is refused) and written back in UTC.
_MICRO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6})(Z|[+-]\d{2}:\d{2})$")


def _micro_time(value, kind):
    match = _MICRO_TIME.match(value) if isinstance(value, str) else None
    if not match:
        raise ApiError(400, "BadRequest", f'{kind} in version "v1" cannot be handled as a {kind}: parsing time '
                       f'"{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "{value}" as '
                       '"2006-01-02T15:04:05.000000Z07:00"')
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    moment = datetime.datetime.fromisoformat(match.group(1) + zone).astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate(res, obj):
    """Raise 422 Invalid with the causes the real validation reports for the fields checked here."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes = []
    if not name:
        causes.append(("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
    elif not (DNS1123_LABEL if res.kind in ("Namespace", "Service") else DNS1123_SUBDOMAIN).match(name) \
            or len(name) > 253:
        causes.append(("metadata.name", "FieldValueInvalid",
                       f"Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case "
                       "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"))
    for field in ("labels", "annotations"):
        for key, value in (meta.get(field) or {}).items():
            if not isinstance(value, str):
                causes.append((f"metadata.{field}", "FieldValueInvalid", f"Invalid value: {key}: must be a string"))
    spec = obj.get("spec") or {}
    if res.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        selector = spec.get("selector")
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(("spec.selector", "FieldValueRequired", "Required value"))
        else:
            for key, value in (selector.get("matchLabels") or {}).items():
                if template_labels.get(key) != value:
                    causes.append(("spec.template.metadata.labels", "FieldValueInvalid",
                                   f"Invalid value: {template_labels!r}: `selector` does not match template `labels`"))
                    break
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            causes.append(("spec.replicas", "FieldValueInvalid",
                           f"Invalid value: {replicas}: must be greater than or equal to 0"))
        causes += _pod_spec_causes((spec.get("template") or {}).get("spec") or {}, "spec.template.spec")
        if res.kind == "Deployment":
            limit = spec.get("revisionHistoryLimit")
            if limit is not None and limit < 0:
                causes.append(("spec.revisionHistoryLimit", "FieldValueInvalid",
                               f"Invalid value: {limit}: must be greater than or equal to 0"))
            deadline = spec.get("progressDeadlineSeconds")
            if deadline is not None and deadline <= (spec.get("minReadySeconds") or 0):
                causes.append(("spec.progressDeadlineSeconds", "FieldValueInvalid",
                               f"Invalid value: {deadline}: must be greater than minReadySeconds"))
            if (spec.get("strategy") or {}).get("type") not in (None, "RollingUpdate", "Recreate"):
                causes.append(("spec.strategy.type", "FieldValueNotSupported",
                               f"Unsupported value: \"{spec['strategy']['type']}\": supported values: "
                               "\"Recreate\", \"RollingUpdate\""))
    elif res.kind == "Pod":
        causes += _pod_spec_causes(spec, "spec")
    elif res.kind == "Lease":
        # pkg/apis/coordination/validation: ValidateLeaseSpec.
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            causes.append(("spec.leaseDurationSeconds", "FieldValueInvalid",
                           f"Invalid value: {duration}: must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
            causes.append(("spec.leaseTransitions", "FieldValueInvalid",
                           f"Invalid value: {transitions}: must be greater than or equal to 0"))
        if spec.get("preferredHolder") and not spec.get("strategy"):
            causes.append(("spec.preferredHolder", "FieldValueForbidden",
                           "Forbidden: may only be specified if `strategy` is defined"))
    elif res.kind == "Service":
        ip = spec.get("clusterIP")
        if ip not in (None, "", "None"):
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                causes.append(("spec.clusterIPs[0]", "FieldValueInvalid",
                               f"Invalid value: \"{ip}\": must be a valid IP address"))
    if causes:
        raise invalid(res, name, causes)


def _pod_spec_causes(spec, path):
    causes = []
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{path}.containers", "FieldValueRequired", "Required value"))
    seen = set()
    for i, container in enumerate(containers or []):
        cname = container.get("name")
        if not cname:
            causes.append((f"{path}.containers[{i}].name", "FieldValueRequired", "Required value"))
        elif cname in seen:
            causes.append((f"{path}.containers[{i}].name", "FieldValueDuplicate", f"Duplicate value: \"{cname}\""))
        seen.add(cname)
        if not container.get("image"):
            causes.append((f"{path}.containers[{i}].image", "FieldValueRequired", "Required value"))
    return causes


# Fields of the Go types (k8s.io/api v0.32) where clients most often send a wrong name (snake_case from a
# client model's to_dict(), typos). The real server drops unknown fields with a warning, or refuses them
# with fieldValidation=Strict; so does the stand-in, for these structures.
OBJECT_META = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
               "ownerReferences", "finalizers", "managedFields"}
POD_SPEC = {"volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
            "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
            "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName", "hostNetwork",
            "hostPID", "hostIPC", "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname",
            "subdomain", "affinity", "schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority",
            "dnsConfig", "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
            "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates", "resourceClaims",
            "resources"}
CONTAINER = {"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources", "resizePolicy",
             "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe",
             "lifecycle", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext",
             "stdin", "stdinOnce", "tty"}
WORKLOAD_SPEC = {
    "Deployment": {"replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit", "paused",
                   "progressDeadlineSeconds"},
    "ReplicaSet": {"replicas", "minReadySeconds", "selector", "template"},
    "StatefulSet": {"replicas", "selector", "template", "volumeClaimTemplates", "serviceName", "podManagementPolicy",
                    "updateStrategy", "revisionHistoryLimit", "minReadySeconds", "persistentVolumeClaimRetentionPolicy",
                    "ordinals"},
    "DaemonSet": {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"},
}
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}


def _drop(mapping, known, path, dropped):
    if not isinstance(mapping, dict):
        return
    for key in [k for k in mapping if k not in known]:
        del mapping[key]
        dropped.append(f"{path}.{key}" if path else key)


def _prune_pod_spec(spec, path, dropped):
    _drop(spec, POD_SPEC, path, dropped)
    for field in ("containers", "initContainers"):
        for i, container in enumerate((spec or {}).get(field) or []):
            _drop(container, CONTAINER, f"{path}.{field}[{i}]", dropped)


def prune_unknown_fields(res, obj):
    """Remove the unknown fields of a workload or pod in place; return their paths as the server names them."""
    dropped = []
    if res.kind not in WORKLOAD_SPEC and res.kind != "Pod":
        return dropped
    _drop(obj, TOP_LEVEL, "", dropped)
    _drop(obj.get("metadata"), OBJECT_META, "metadata", dropped)
    if res.kind == "Pod":
        _prune_pod_spec(obj.get("spec"), "spec", dropped)
        return dropped
    spec = obj.get("spec")
    _drop(spec, WORKLOAD_SPEC[res.kind], "spec", dropped)
    template = (spec or {}).get("template")
    if isinstance(template, dict):
        _drop(template, {"metadata", "spec"}, "spec.template", dropped)
        _drop(template.get("metadata"), OBJECT_META, "spec.template.metadata", dropped)
        _prune_pod_spec(template.get("spec"), "spec.template.spec", dropped)
    return dropped
