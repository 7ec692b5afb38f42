# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""ARM template deployments: history, what-if, validate and redeploy.

The SDK is ``azure-mgmt-resource-deployments`` (``DeploymentsMgmtClient``):
``azure-mgmt-resource`` 26 moved the deployments operations out into that
package, and it carries everything the runbooks' "Infrastructure Rollback"
needs at resource-group and subscription scope: list / get, export template,
validate, what-if and create-or-update as long-running operations.

Everything is handled as ARM's own REST dictionaries (``model.as_dict()``,
camelCase keys), so the pure functions below are tested with plain data.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import traceback

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_IDENTITY_IMPORT_ERROR, AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import (
    arm_call,
    arm_error_code,
    arm_error_message,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.operation_wait import wait_for_operation

try:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
except ImportError:
    DEPLOYMENTS_IMPORT_ERROR = traceback.format_exc()
    HttpResponseError = ResourceNotFoundError = None
else:
    DEPLOYMENTS_IMPORT_ERROR = None

# What both deployment modules need installed, for RollbackModule.require_libraries().
REQUIRED_LIBRARIES = [("azure-identity", AZURE_IDENTITY_IMPORT_ERROR),
                      ("azure-mgmt-resource-deployments", DEPLOYMENTS_IMPORT_ERROR)]

SECURE_TYPES = ("securestring", "secureobject")
SECURE_MASK = "VALUE_NOT_RETURNED_BY_ARM"
CHANGE_TYPES = ("Create", "Modify", "Delete", "Deploy", "NoChange", "Ignore", "Unsupported")
# What-if change types that mean "the deployment would change something".
ACTING_CHANGE_TYPES = ("Create", "Modify", "Delete", "Deploy")
DEPLOYMENT_NAME_MAX = 64


# -- pure helpers -------------------------------------------------------------------------------------
def parse_timestamp(text):
    """ARM timestamps carry up to 7 fractional digits and a Z; Python wants at most 6 and an offset."""
    if not text:
        return None
    if isinstance(text, datetime.datetime):
        return text
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$", str(text))
    if not m:
        return None
    base, frac, zone = m.groups()
    frac = (frac or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    return datetime.datetime.fromisoformat("%s.%s%s" % (base, frac, zone))


def duration_seconds(iso_duration):
    """PT1M2.5S -> 62.5; None when absent or not understood."""
    m = re.match(r"^P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$", iso_duration or "")
    if not m or not iso_duration or iso_duration in ("P", "PT"):
        return None
    days, hours, minutes, seconds = m.groups()
    return round(int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0), 3)


def mask_parameters(parameters):
    """{name: value} from ARM's {name: {type, value}}; secure ones (ARM never returns them) are masked."""
    out = {}
    for name, entry in (parameters or {}).items():
        entry = entry or {}
        if str(entry.get("type", "")).lower() in SECURE_TYPES or "value" not in entry:
            out[name] = SECURE_MASK
        else:
            out[name] = entry["value"]
    return out


def plain_outputs(outputs):
    return {name: (entry or {}).get("value", SECURE_MASK) for name, entry in (outputs or {}).items()}


def summarize_deployment(raw):
    """One history entry in the module's snake_case shape, from ARM's DeploymentExtended dict."""
    props = raw.get("properties") or {}
    error = props.get("error")
    return {
        "name": raw.get("name"),
        "id": raw.get("id"),
        "timestamp": props.get("timestamp"),
        "state": props.get("provisioningState"),
        "mode": props.get("mode"),
        "template_hash": props.get("templateHash"),
        "correlation_id": props.get("correlationId"),
        "duration": props.get("duration"),
        "duration_s": duration_seconds(props.get("duration")),
        "parameters": mask_parameters(props.get("parameters")),
        "secure_parameters": sorted(n for n, e in (props.get("parameters") or {}).items()
                                    if str((e or {}).get("type", "")).lower() in SECURE_TYPES),
        "outputs": plain_outputs(props.get("outputs")),
        "output_resources": [r.get("id") for r in props.get("outputResources") or []],
        "error": error,
        "location": raw.get("location"),
        "tags": raw.get("tags") or {},
    }


def newest_first(history):
    """ARM documents no order for the list: sort by timestamp, newest first (no timestamp: last)."""
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return sorted(history, key=lambda d: parse_timestamp(d.get("timestamp")) or epoch, reverse=True)


def last_successful(history, exclude=None, before=None):
    """The newest Succeeded deployment, not named ``exclude`` and older than the one named ``before``.

    ``history`` is summaries; raises RollbackError when ``before`` is not in it.
    """
    ordered = newest_first(history)
    cutoff = None
    if before:
        match = [d for d in ordered if d["name"].lower() == before.lower()]
        if not match:
            raise RollbackError("Deployment '%s' (named in before) is not in the deployment history; known: %s."
                                % (before, ", ".join(d["name"] for d in ordered) or "none"))
        cutoff = parse_timestamp(match[0]["timestamp"])
    excluded = {n.lower() for n in ([exclude] if isinstance(exclude, str) else (exclude or [])) if n}
    if before:
        excluded.add(before.lower())
    for dep in ordered:
        if dep["name"].lower() in excluded or dep["state"] != "Succeeded":
            continue
        if cutoff is not None and (parse_timestamp(dep["timestamp"]) is None or parse_timestamp(dep["timestamp"]) >= cutoff):
            continue
        return dep
    return None


def filter_history(history, name=None, state=None):
    out = history
    if name:
        out = [d for d in out if (d["name"] or "").lower() == name.lower()]
    if state:
        out = [d for d in out if (d["state"] or "").lower() == state.lower()]
    return out


def secure_parameter_names(template):
    return sorted(name for name, decl in ((template or {}).get("parameters") or {}).items()
                  if str((decl or {}).get("type", "")).lower() in SECURE_TYPES)


def arm_parameter_values(values):
    """User-facing {name: value} -> ARM's {name: {"value": value}}.

    A value already written the ARM way (a dict whose only key is ``value`` or
    ``reference``, as in a parameters file) is kept as it is.
    """
    out = {}
    for name, value in (values or {}).items():
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("value", "reference"):
            out[name] = value
        else:
            out[name] = {"value": value}
    return out


def parameters_file_values(data, path="parameters file"):
    """Parameters from an ARM parameters file ({"parameters": {...}}) or a plain {name: value} object."""
    if not isinstance(data, dict):
        raise RollbackError("%s must hold a JSON object." % path)
    if isinstance(data.get("parameters"), dict) and ("$schema" in data or "contentVersion" in data):
        return arm_parameter_values(data["parameters"])
    return arm_parameter_values(data)


def redeploy_parameters(template, source_parameters, overrides, secure_values):
    """ARM parameters for a redeploy, and the secure ones still missing.

    ``source_parameters``: the earlier deployment's ARM {name: {type, value}} (secure ones have no value);
    ``overrides`` / ``secure_values``: the user's, ARM-shaped.  Parameters the template no longer
    declares are dropped (the template is the earlier one, so this only concerns overrides by mistake).
    """
    declared = {k.lower(): k for k in ((template or {}).get("parameters") or {})}
    params = {}
    for name, entry in (source_parameters or {}).items():
        if "value" in (entry or {}) and str(entry.get("type", "")).lower() not in SECURE_TYPES:
            params[name] = {"value": entry["value"]}
    unknown = [n for n in list(overrides or {}) + list(secure_values or {}) if n.lower() not in declared]
    if unknown:
        raise RollbackError("Parameters not declared by the template: %s. It declares: %s."
                            % (", ".join(sorted(unknown)), ", ".join(sorted(declared.values())) or "none"))
    for source in (overrides or {}), (secure_values or {}):
        for name, entry in source.items():
            params[declared[name.lower()]] = entry
    # ARM parameters are case-insensitive: keep one spelling per name (the template's).
    merged = {}
    for name, entry in params.items():
        merged[declared.get(name.lower(), name)] = entry
    missing = []
    for name in secure_parameter_names(template):
        decl = template["parameters"][name] or {}
        if name not in merged and "defaultValue" not in decl:
            missing.append(name)
    return merged, missing


def summarize_what_if(changes):
    """Counts per change type and the list, from ARM's WhatIfChange dicts."""
    counts = {t.lower(): 0 for t in CHANGE_TYPES}
    listed = []
    for change in changes or []:
        ctype = change.get("changeType") or "Unsupported"
        counts[ctype.lower()] = counts.get(ctype.lower(), 0) + 1
        entry = {"resource_id": change.get("resourceId"), "change_type": ctype}
        if change.get("delta"):
            entry["delta"] = [_delta_entry(d) for d in change["delta"]]
        if change.get("unsupportedReason"):
            entry["unsupported_reason"] = change["unsupportedReason"]
        listed.append(entry)
    acting = sum(counts[t.lower()] for t in ACTING_CHANGE_TYPES)
    return {
        "create": counts["create"], "modify": counts["modify"], "delete": counts["delete"],
        "deploy": counts["deploy"], "no_change": counts["nochange"], "ignore": counts["ignore"],
        "unsupported": counts["unsupported"], "has_changes": acting > 0, "changes": listed,
    }


def _delta_entry(delta):
    entry = {"path": delta.get("path"), "change_type": delta.get("propertyChangeType")}
    for key in ("before", "after"):
        if key in delta:
            entry[key] = delta[key]
    if delta.get("children"):
        entry["children"] = [_delta_entry(c) for c in delta["children"]]
    return entry


def what_if_diff(changes):
    """Ansible diff (before/after per resource id) for the resources what-if says would change."""
    before, after = {}, {}
    for change in changes or []:
        if change.get("changeType") in ACTING_CHANGE_TYPES:
            rid = change.get("resourceId")
            before[rid] = change.get("before")
            after[rid] = change.get("after")
    return {"before": before, "after": after}


def default_deployment_name(source, now=None):
    """rollback-<source>-<UTC timestamp>, kept to ARM's 64 characters and allowed characters."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y%m%d%H%M%S")
    clean = re.sub(r"[^A-Za-z0-9_.()-]", "-", source or "template").strip("-.") or "template"
    room = DEPLOYMENT_NAME_MAX - len("rollback--") - len(stamp)
    return "rollback-%s-%s" % (clean[:room].rstrip("-."), stamp)


def validate_deployment_name(name):
    if not re.match(r"^[-\w._()]{1,64}$", name or ""):
        raise RollbackError("Deployment name '%s' is not valid: 1 to 64 letters, digits, '-', '_', '.', '(' or ')'."
                            % name)


def bicep_build_argv(bicep, template_file):
    """The command that builds a Bicep file to ARM JSON on stdout (Bicep CLI 0.4+)."""
    return [bicep, "build", template_file, "--stdout"]


def load_template_file(path, which=shutil.which, run=subprocess.run):
    """ARM JSON from a .json template, or from a .bicep file built with the bicep CLI."""
    if not os.path.isfile(path):
        raise RollbackError("template_file '%s' does not exist or is not a file." % path)
    if path.lower().endswith(".bicep"):
        bicep = which("bicep")
        if not bicep:
            raise RollbackError(
                "template_file '%s' is a Bicep file, and building it needs the bicep CLI on PATH, which was not "
                "found. Install it (https://aka.ms/bicep-install, or `az bicep install` and add ~/.azure/bin to "
                "PATH), or build it yourself with `bicep build %s --stdout > main.json` and pass the JSON file."
                % (path, path))
        argv = bicep_build_argv(bicep, path)
        # run_command needs an AnsibleModule, which module_utils never gets; argv, no shell.
        proc = run(argv, capture_output=True, text=True, check=False, timeout=300)  # pylint: disable=ansible-bad-function
        if proc.returncode != 0:
            raise RollbackError("bicep build of '%s' failed (exit %s): %s"
                                % (path, proc.returncode, (proc.stderr or proc.stdout or "").strip()[:2000]))
        text = proc.stdout
    else:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    try:
        template = json.loads(text)
    except ValueError as error:
        raise RollbackError("template_file '%s' is not valid JSON: %s" % (path, error)) from error
    if not isinstance(template, dict) or "resources" not in template:
        raise RollbackError("template_file '%s' is not an ARM template (no 'resources')." % path)
    return template


def load_parameters_file(path):
    if not os.path.isfile(path):
        raise RollbackError("parameters_file '%s' does not exist or is not a file." % path)
    if path.lower().endswith(".bicepparam"):
        raise RollbackError("parameters_file '%s' is a .bicepparam file: build it to JSON with "
                            "`bicep build-params %s --stdout` first, or pass a JSON parameters file." % (path, path))
    with open(path, encoding="utf-8") as handle:
        try:
            data = json.load(handle)
        except ValueError as error:
            raise RollbackError("parameters_file '%s' is not valid JSON: %s" % (path, error)) from error
    return parameters_file_values(data, "parameters_file '%s'" % path)


def arm_error_details(error):
    """(code, message, details) of an azure-core HttpResponseError, inner errors included."""
    code, message, details = arm_error_code(error), arm_error_message(error), []
    body = None
    response = getattr(error, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:  # pylint: disable=broad-except
        body = None
    inner = (body or {}).get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict):
        code = inner.get("code") or code
        message = inner.get("message") or message
        details = inner.get("details") or []
    return code, message, details


def error_text(error_dict):
    """'Code: message (Inner: message; ...)' from an ARM error dict."""
    if not error_dict:
        return "no error reported"
    text = "%s: %s" % (error_dict.get("code"), error_dict.get("message"))
    inner = ["%s: %s" % (d.get("code"), d.get("message")) for d in error_dict.get("details") or []]
    if inner:
        text += " (%s)" % "; ".join(inner)
    return text


# -- the client side -----------------------------------------------------------------------------------
class ArmDeployments:
    """Deployments of one scope: a resource group, or the subscription when resource_group is None."""

    def __init__(self, client, resource_group=None, polling_interval=5):
        self.client = client
        self.resource_group = resource_group
        self.polling_interval = polling_interval

    @classmethod
    def from_params(cls, params):
        settings = AzureSettings.from_params(params)
        client = DeploymentsMgmtClient(settings.credential(), settings.subscription_id, **settings.client_kwargs())
        # Polled every 5 s unless ARM's Retry-After says otherwise; deployments take minutes.
        return cls(client, params.get("resource_group"))

    @property
    def scope_text(self):
        return "resource group '%s'" % self.resource_group if self.resource_group else "the subscription"

    # -- history ----------------------------------------------------------------------------------
    def history(self):
        with arm_call("Listing the deployments of %s" % self.scope_text):
            if self.resource_group:
                items = self.client.deployments.list_by_resource_group(self.resource_group)
            else:
                items = self.client.deployments.list_at_subscription_scope()
            return newest_first([summarize_deployment(d.as_dict()) for d in items])

    def get_raw(self, name):
        """The deployment's ARM dict, or None when it does not exist."""
        try:
            with arm_call("Reading deployment '%s' in %s" % (name, self.scope_text)):
                if self.resource_group:
                    return self.client.deployments.get(self.resource_group, name).as_dict()
                return self.client.deployments.get_at_subscription_scope(name).as_dict()
        except RollbackError:
            if self.exists(name):
                raise
            return None

    def exists(self, name):
        """Distinguishes 'no such deployment' from 'no such resource group' (both are 404)."""
        with arm_call("Checking deployment '%s' in %s" % (name, self.scope_text)):
            if self.resource_group:
                return self.client.deployments.check_existence(self.resource_group, name)
            return self.client.deployments.check_existence_at_subscription_scope(name)

    def export_template(self, name):
        with arm_call("Exporting the template of deployment '%s'" % name):
            if self.resource_group:
                result = self.client.deployments.export_template(self.resource_group, name)
            else:
                result = self.client.deployments.export_template_at_subscription_scope(name)
            return result.as_dict().get("template")

    # -- validate / what-if / deploy ----------------------------------------------------------------
    def validate(self, name, body, timeout_s):
        """ARM's validation (template, parameters, preflight). Raises RollbackError with ARM's errors."""
        with arm_call("Validating deployment '%s'" % name):
            try:
                if self.resource_group:
                    poller = self.client.deployments.begin_validate(
                        self.resource_group, name, body, polling_interval=self.polling_interval)
                else:
                    poller = self.client.deployments.begin_validate_at_subscription_scope(
                        name, body, polling_interval=self.polling_interval)
                wait_for_operation(poller, timeout_s, "Validation of deployment '%s'" % name)
                result = poller.result().as_dict()
            except HttpResponseError as error:
                if isinstance(error, ResourceNotFoundError):
                    raise  # a missing resource group: arm_call words it
                # ARM answers a failed validation with 400 and the error (InvalidTemplate, InvalidTemplateDeployment).
                code, message, details = arm_error_details(error)
                failure = {"code": code, "message": message, "details": details}
                raise RollbackError("The template failed ARM validation, nothing was deployed: %s" % error_text(failure),
                                    validation_error=failure) from error
        if result.get("error"):
            raise RollbackError("The template failed ARM validation, nothing was deployed: %s"
                                % error_text(result["error"]), validation_error=result["error"])
        return result

    def what_if(self, name, body, timeout_s):
        with arm_call("What-if of deployment '%s'" % name):
            try:
                if self.resource_group:
                    poller = self.client.deployments.begin_what_if(
                        self.resource_group, name, body, polling_interval=self.polling_interval)
                else:
                    poller = self.client.deployments.begin_what_if_at_subscription_scope(
                        name, body, polling_interval=self.polling_interval)
                wait_for_operation(poller, timeout_s, "What-if of deployment '%s'" % name)
                result = poller.result().as_dict()
            except HttpResponseError as error:
                if isinstance(error, ResourceNotFoundError):
                    raise
                code, message, details = arm_error_details(error)
                raise RollbackError("ARM what-if failed, nothing was deployed: %s"
                                    % error_text({"code": code, "message": message, "details": details})) from error
        if result.get("error"):
            raise RollbackError("ARM what-if failed, nothing was deployed: %s" % error_text(result["error"]))
        return (result.get("properties") or {}).get("changes") or []

    def deploy(self, name, body, timeout_s):
        """Create the deployment and wait for its end. Returns (summary, progress)."""
        progress = []
        try:
            with arm_call("Deployment '%s'" % name):
                if self.resource_group:
                    poller = self.client.deployments.begin_create_or_update(
                        self.resource_group, name, body, polling_interval=self.polling_interval)
                else:
                    poller = self.client.deployments.begin_create_or_update_at_subscription_scope(
                        name, body, polling_interval=self.polling_interval)
                progress = wait_for_operation(poller, timeout_s, "Deployment '%s'" % name)
        except RollbackError as error:
            # The operation failed or timed out: report the state ARM reached and its error, read afresh.
            raw = self._read_quietly(name)
            state = ((raw or {}).get("properties") or {}).get("provisioningState")
            arm_error = ((raw or {}).get("properties") or {}).get("error")
            details = dict(error.details)
            details.update(deployment_name=name, state=state, error=arm_error)
            if arm_error and state == "Failed":
                raise RollbackError("Deployment '%s' ended %s: %s" % (name, state, error_text(arm_error)),
                                    **details) from error
            raise RollbackError("%s Its state in ARM now: %s." % (error.message, state or "unknown"), **details) from error
        raw = self.get_raw(name)
        return summarize_deployment(raw), progress

    def _read_quietly(self, name):
        try:
            return self.get_raw(name)
        except RollbackError:
            return None


def deployment_body(template, parameters, mode, location=None):
    body = {"properties": {"template": template, "parameters": parameters, "mode": mode}}
    if location:
        body["location"] = location
    return body


# -- redeploy: decide by what-if, act, wait ------------------------------------------------------------
class RedeployRequest:
    """What the user asked for, already checked (plain values, no SDK objects)."""

    def __init__(self, deployment_name=None, last_successful=False, before=None, exclude=None, template_file=None,
                 parameters=None, parameters_file=None, secure_parameters=None, new_name=None,
                 mode="incremental", allow_complete_mode=False, force=False, location=None, wait_timeout=1800):
        self.deployment_name = deployment_name
        self.last_successful = last_successful
        self.before = before
        self.exclude = exclude
        self.template_file = template_file
        self.parameters = parameters or {}
        self.parameters_file = parameters_file
        self.secure_parameters = secure_parameters or {}
        self.new_name = new_name
        self.mode = mode
        self.allow_complete_mode = allow_complete_mode
        self.force = force
        self.location = location
        self.wait_timeout = wait_timeout

    def check(self):
        """Input errors that need no Azure call."""
        sources = [bool(self.deployment_name), bool(self.last_successful), bool(self.template_file)]
        if sum(sources) != 1:
            raise RollbackError("Give exactly one source: deployment_name, last_successful=true or template_file.")
        if self.before and not self.last_successful:
            raise RollbackError("before applies to last_successful only.")
        if self.parameters_file and not self.template_file:
            raise RollbackError("parameters_file applies to template_file only; a history deployment brings its "
                                "own parameters (override them with parameters).")
        if self.mode == "complete" and not self.allow_complete_mode:
            raise RollbackError(
                "mode=complete deletes every resource of the resource group that the template does not declare; "
                "set allow_complete_mode=true to confirm, or use mode=incremental (the default).")
        if self.wait_timeout <= 0:
            raise RollbackError("wait_timeout must be more than 0 seconds.")
        if self.new_name:
            validate_deployment_name(self.new_name)


def plan_source(deployments, request, load_template=load_template_file, load_parameters=load_parameters_file):
    """Resolve the source: (label, template, ARM parameters, source summary or None, location)."""
    if request.template_file:
        template = load_template(request.template_file)
        params = load_parameters(request.parameters_file) if request.parameters_file else {}
        params.update(arm_parameter_values(request.parameters))
        merged, missing = redeploy_parameters(template, {}, params, arm_parameter_values(request.secure_parameters))
        label = re.sub(r"\.(json|bicep)$", "", os.path.basename(request.template_file), flags=re.I)
        return label, template, merged, missing, None, request.location
    history = newest_first(deployments.history())
    if request.deployment_name:
        match = filter_history(history, name=request.deployment_name)
        if not match:
            raise RollbackError(
                "Deployment '%s' is not in the deployment history of %s; known (newest first): %s."
                % (request.deployment_name, deployments.scope_text, ", ".join(d["name"] for d in history) or "none"))
        source = match[0]
        if source["state"] != "Succeeded":
            raise RollbackError(
                "Deployment '%s' ended %s; redeploying it would repeat that. Name a Succeeded deployment, or use "
                "last_successful=true." % (source["name"], source["state"]), source=source)
    else:
        source = last_successful(history, exclude=request.exclude, before=request.before)
        if source is None:
            raise RollbackError("No Succeeded deployment in the history of %s%s%s."
                                % (deployments.scope_text,
                                   " before '%s'" % request.before if request.before else "",
                                   " other than %s" % request.exclude if request.exclude else ""))
    template = deployments.export_template(source["name"])
    raw = deployments.get_raw(source["name"]) or {}
    source_params = (raw.get("properties") or {}).get("parameters") or {}
    merged, missing = redeploy_parameters(template, source_params, arm_parameter_values(request.parameters),
                                          arm_parameter_values(request.secure_parameters))
    return source["name"], template, merged, missing, source, request.location or source.get("location")


def redeploy(deployments, request, check_mode=False, diff_mode=False, now=None,
             load_template=load_template_file, load_parameters=load_parameters_file):
    """Returns (changed, result). Validate and what-if always run first; deploy only on a change (or force)."""
    request.check()
    if request.mode == "complete" and not deployments.resource_group:
        raise RollbackError("mode=complete exists for resource-group deployments only; give resource_group.")
    label, template, params, missing, source, location = plan_source(deployments, request, load_template,
                                                                     load_parameters)
    if missing:
        raise RollbackError(
            "Secure parameters %s have no value: ARM never returns secureString/secureObject values, so they cannot "
            "be read back from %s. Pass them in secure_parameters (no_log), e.g. from a vault."
            % (", ".join(missing), "the earlier deployment" if source else "the template"),
            missing_secure_parameters=missing)
    if not deployments.resource_group and not location:
        raise RollbackError("A subscription-scope deployment needs a location: set location.")
    name = request.new_name or default_deployment_name(label, now)
    mode = "Complete" if request.mode == "complete" else "Incremental"
    body = deployment_body(template, params, mode, None if deployments.resource_group else location)
    timeout = request.wait_timeout
    result = {"source": source or {"template_file": request.template_file}, "source_name": label,
              "deployment_name": name, "mode": mode}
    deployments.validate(name, body, timeout)
    changes = deployments.what_if(name, body, timeout)
    summary = summarize_what_if(changes)
    result["what_if"] = summary
    result["before"] = {"what_if": {k: summary[k] for k in ("create", "modify", "delete", "no_change", "ignore")}}
    if diff_mode:
        result["diff"] = what_if_diff(changes)
    would_act = summary["has_changes"] or request.force
    if check_mode or not would_act:
        result.update(deployment=None, outputs={}, after=result["before"])
        if not would_act:
            result["msg"] = ("ARM what-if reports no change: the resources already match '%s'; nothing deployed "
                             "(force=true deploys anyway)." % label)
        return would_act, result
    deployed, progress = deployments.deploy(name, body, timeout)
    result.update(deployment=deployed, outputs=deployed["outputs"], progress=progress,
                  after={"deployment": deployed["name"], "state": deployed["state"]})
    return True, result
