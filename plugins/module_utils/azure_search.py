# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Rebuild an Azure AI Search index: drop it, re-create it from a saved or the current
definition, refill it with its indexer or a re-sync command, and wait until it is whole.

A rebuild is an action, not a state, so it is made idempotent by its conditions
(``rebuild_if``): by default the index is rebuilt only when it is missing, when its
definition differs from the saved one, or when it holds fewer documents than expected.
Once a rebuild has worked none of these is true any more, so running the same task
again changes nothing. ``force`` rebuilds whatever the conditions say.

The index is empty while it is refilled, so nothing is dropped before everything that
can fail early has been checked: the definition is validated locally and then by the
service itself (a temporary index created from it and deleted again), the indexer or
command to refill it exists, and the caller confirmed. The live index is never dropped
on a definition the service would refuse.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import subprocess
import time
import traceback
import uuid

from ansible.module_utils.basic import env_fallback

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    from azure.core.credentials import AzureKeyCredential
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.search.documents import SearchClient
    from azure.search.documents.indexes import SearchIndexClient, SearchIndexerClient
except ImportError:
    SEARCH_IMPORT_ERROR = traceback.format_exc()
    ClientAuthenticationError = HttpResponseError = ResourceNotFoundError = None
    ServiceRequestError = ServiceResponseError = None
else:
    SEARCH_IMPORT_ERROR = None

SEARCH_ARGSPEC = dict(
    endpoint=dict(type="str", fallback=(env_fallback, ["AZURE_SEARCH_ENDPOINT"])),
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["AZURE_SEARCH_API_KEY"])),
)

REBUILD_CONDITIONS = ("missing", "definition_differs", "short_of_documents")
PRIMITIVE_TYPES = ("Edm.String", "Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.Boolean", "Edm.DateTimeOffset",
                   "Edm.GeographyPoint", "Edm.Single", "Edm.Half", "Edm.Int16", "Edm.SByte", "Edm.Byte",
                   "Edm.ComplexType")
INDEX_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){0,126}[a-z0-9]$|^[a-z0-9]$")
# The service's bookkeeping, never part of what a definition asks for.
SERVICE_KEYS = ("@odata.context", "@odata.etag", "e_tag")
OUTPUT_TAIL = 2000


# -- definitions: pure functions, unit-tested -------------------------------------------------

def clean_definition(definition):
    """A definition without the service's bookkeeping (@odata.*), ready to send."""
    return {k: copy.deepcopy(v) for k, v in definition.items() if k not in SERVICE_KEYS}


def load_definition(path):
    try:
        with open(path, encoding="utf-8") as handle:
            definition = json.load(handle)
    except OSError as error:
        raise RollbackError("Cannot read definition_file %s: %s" % (path, error.strerror or error))
    except ValueError as error:
        raise RollbackError("definition_file %s is not valid JSON: %s" % (path, error))
    if not isinstance(definition, dict):
        raise RollbackError("definition_file %s must hold one index definition (a JSON object), as "
                            "GET /indexes('name') returns it." % path)
    return definition


def definition_problems(definition):
    """What the service would refuse in an index definition, found without asking it.

    The service checks far more (analyzers, vector profiles, suggesters); this catches the
    mistakes a hand-edited or truncated definition file makes, with plain messages.
    """
    problems = []
    name = definition.get("name")
    if not isinstance(name, str) or not INDEX_NAME_RE.match(name):
        problems.append("name %r is not a valid index name (lowercase letters, digits and single dashes, "
                        "at most 128 characters, no dash at either end)" % (name,))
    fields = definition.get("fields")
    if not isinstance(fields, list) or not fields:
        problems.append("fields must be a non-empty list")
        return problems
    names = set()
    keys = []
    for position, field in enumerate(fields):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str) or not field.get("name"):
            problems.append("fields[%d] has no name" % position)
            continue
        if field["name"].lower() in names:
            problems.append("field %r appears more than once" % field["name"])
        names.add(field["name"].lower())
        type_name = field.get("type")
        inner = type_name[len("Collection("):-1] if isinstance(type_name, str) and \
            type_name.startswith("Collection(") and type_name.endswith(")") else type_name
        if inner not in PRIMITIVE_TYPES:
            problems.append("field %r has an unknown type %r" % (field["name"], type_name))
        if field.get("key"):
            keys.append(field)
    if len(keys) != 1:
        problems.append("exactly one field must be the key (key: true), found %d" % len(keys))
    elif keys[0].get("type") != "Edm.String":
        problems.append("the key field %r must be of type Edm.String" % keys[0]["name"])
    return problems


def _field_map(definition):
    return {f.get("name"): f for f in definition.get("fields") or [] if isinstance(f, dict)}


def _differs(wanted, current):
    """Whether `current` lacks something `wanted` says (keys `wanted` leaves out do not count)."""
    if isinstance(wanted, dict):
        if not isinstance(current, dict):
            return wanted not in (None, {})
        return any(_differs(value, current.get(key)) for key, value in wanted.items() if key not in SERVICE_KEYS)
    if isinstance(wanted, list):
        if not isinstance(current, list) or len(wanted) != len(current):
            return not (wanted == [] and current in (None, []))
        return any(_differs(w, c) for w, c in zip(wanted, current))
    if wanted is None:
        return current not in (None, [], {})
    return wanted != current


def definition_differences(wanted, current):
    """Human-readable differences between a saved definition and the live one.

    The saved definition is what the REST API returned when it was saved; a hand-written one may
    leave out properties the service fills in with defaults, so only what `wanted` states is
    compared, except that the set of fields must match exactly.
    """
    differences = []
    wanted_fields, current_fields = _field_map(wanted), _field_map(current)
    for name in wanted_fields:
        if name not in current_fields:
            differences.append("field %s is missing" % name)
        elif _differs(wanted_fields[name], current_fields[name]):
            changed = sorted(k for k, v in wanted_fields[name].items() if _differs(v, current_fields[name].get(k)))
            differences.append("field %s differs (%s)" % (name, ", ".join(changed)))
    for name in current_fields:
        if name not in wanted_fields:
            differences.append("field %s is not in the saved definition" % name)
    for key in sorted(set(wanted) - {"fields", "name"} - set(SERVICE_KEYS)):
        if _differs(wanted[key], current.get(key)):
            differences.append("%s differs" % key)
    return differences


def describe(definition, document_count):
    if definition is None:
        return {"exists": False, "field_count": 0, "document_count": None, "etag": None}
    return {"exists": True, "field_count": len(definition.get("fields") or []), "document_count": document_count,
            "etag": definition.get("@odata.etag")}


def write_definition(path, definition, check_mode):
    """Save a definition as the REST API returned it; True when the file changed (or would)."""
    text = json.dumps(definition, indent=2, sort_keys=True) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    if check_mode:
        return True
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = "%s.tmp-%s" % (path, uuid.uuid4().hex[:8])
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as error:
        raise RollbackError("Cannot write the index definition to %s: %s" % (path, error.strerror or error))
    return True


# -- the service ------------------------------------------------------------------------------

def _service_message(error):
    inner = getattr(error, "error", None)
    message = getattr(inner, "message", None) or getattr(error, "message", None) or str(error)
    return message.strip().splitlines()[0] if message.strip() else "(no message)"


@contextlib.contextmanager
def search_call(what, not_found=None, **details):
    """Run Azure AI Search calls for `what`; re-raise their failures as RollbackError."""
    if HttpResponseError is None:
        yield
        return
    try:
        yield
    except RollbackError:
        raise
    except ClientAuthenticationError as error:
        raise RollbackError(
            "%s failed: the search service refused the request as unauthenticated (HTTP 401). Give api_key "
            "(or AZURE_SEARCH_API_KEY), or an Entra identity with a Search role." % what, **details) from error
    except ResourceNotFoundError as error:
        raise RollbackError(not_found or "%s: not found (%s)" % (what, _service_message(error)), **details) from error
    except HttpResponseError as error:
        if error.status_code == 403:
            raise RollbackError(
                "%s failed: the search service refused the key (HTTP 403 Forbidden). Use an admin key of this "
                "service: a query key can only read documents, and a key of another service is refused." % what,
                **details) from error
        raise RollbackError("%s failed: HTTP %s: %s" % (what, error.status_code, _service_message(error)),
                            **details) from error
    except ServiceResponseError as error:
        raise RollbackError(
            "%s failed: the search service did not answer (%s). Retry, or raise api_timeout; check the index "
            "before repeating a change." % (what, str(error).splitlines()[0]), **details) from error
    except ServiceRequestError as error:
        raise RollbackError(
            "%s failed: cannot reach the search service (%s). Check endpoint, the network and the CA bundle "
            "(REQUESTS_CA_BUNDLE)." % (what, str(error).splitlines()[0]), **details) from error


class SearchService:
    """The calls a rebuild needs, on plain dicts (definitions as the REST API returns them)."""

    def __init__(self, endpoint, credential, api_retries=5, api_timeout=60.0):
        self.endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._kwargs = dict(retry_total=api_retries, retry_backoff_factor=0.5, retry_backoff_max=30,
                            connection_timeout=min(api_timeout, 30), read_timeout=api_timeout)
        self.indexes = SearchIndexClient(self.endpoint, credential, **self._kwargs)
        self.indexers = SearchIndexerClient(self.endpoint, credential, **self._kwargs)

    @classmethod
    def from_params(cls, params):
        endpoint = params.get("endpoint")
        if not endpoint:
            raise RollbackError("No search service given: set endpoint (https://<service>.search.windows.net) or "
                                "AZURE_SEARCH_ENDPOINT.")
        if not endpoint.lower().startswith("https://"):
            raise RollbackError("endpoint must be an https URL: %s" % endpoint)
        if params.get("api_retries", 0) < 0 or params.get("api_timeout", 1) <= 0:
            raise RollbackError("api_retries must be 0 or more and api_timeout more than 0.")
        if params.get("api_key"):
            credential = AzureKeyCredential(params["api_key"])
        else:
            # Entra ID with the collection's shared Azure options (RBAC on the search service).
            from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AzureSettings
            credential = AzureSettings.from_params(params, require_subscription=False).credential()
        return cls(endpoint, credential, params.get("api_retries", 5), params.get("api_timeout", 60.0))

    def get_definition(self, index):
        """The definition as GET returns it, or None when there is no such index."""
        with search_call("Reading index %s" % index):
            try:
                return self.indexes.get_index(index).as_dict()
            except ResourceNotFoundError:
                return None

    def document_count(self, index):
        with search_call("Counting the documents of index %s" % index):
            return int(SearchClient(self.endpoint, index, self._credential, **self._kwargs).get_document_count())

    def create_index(self, definition, what=None):
        with search_call(what or "Creating index %s" % definition.get("name")):
            return self.indexes.create_index(clean_definition(definition)).as_dict()

    def delete_index(self, index, what=None):
        with search_call(what or "Deleting index %s" % index):
            self.indexes.delete_index(index)

    def indexers_of(self, index):
        with search_call("Listing the indexers"):
            return sorted(x.name for x in self.indexers.get_indexers() if x.target_index_name == index)

    def indexer(self, name):
        with search_call("Reading indexer %s" % name, not_found="Indexer %s does not exist on %s." % (name, self.endpoint)):
            return self.indexers.get_indexer(name).as_dict()

    def indexer_status(self, name):
        with search_call("Reading the status of indexer %s" % name):
            return self.indexers.get_indexer_status(name).as_dict()

    def reset_and_run(self, name):
        with search_call("Resetting indexer %s" % name):
            self.indexers.reset_indexer(name)
        with search_call("Running indexer %s" % name):
            self.indexers.run_indexer(name)


# -- the procedure ----------------------------------------------------------------------------

def _run_view(result):
    if not result:
        return None
    return {"status": result.get("status"), "items_processed": result.get("itemsProcessed"),
            "items_failed": result.get("itemsFailed"), "error_message": result.get("errorMessage"),
            "errors": [e.get("errorMessage") for e in result.get("errors") or []],
            "start_time": result.get("startTime"), "end_time": result.get("endTime")}


class IndexRebuild:
    """Decide, predict, validate, drop, re-create, refill and wait, for one index."""

    def __init__(self, service, index, definition_file=None, export_definition=None, state="rebuilt",
                 indexer=None, resync_command=None, expected_document_count=None, rebuild_if=REBUILD_CONDITIONS,
                 force=False, confirm=False, validate_with_service=True, wait_timeout=900, poll_interval=5.0,
                 check_mode=False, clock=time.monotonic, sleep=time.sleep, runner=subprocess.run):
        self.service = service
        self.index = index
        self.definition_file = definition_file
        self.export_definition = export_definition
        self.state = state
        self.indexer_name = indexer
        self.resync_command = resync_command
        self.expected = expected_document_count
        self.rebuild_if = tuple(rebuild_if or ())
        self.force = force
        self.confirm = confirm
        self.validate_with_service = validate_with_service
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self.check_mode = check_mode
        self.clock, self.sleep, self.runner = clock, sleep, runner
        self.progress = []

    def _note(self, message):
        self.progress.append(message)

    # -- entry point -------------------------------------------------------------------------
    def run(self):
        if self.expected is not None and self.expected < 0:
            raise RollbackError("expected_document_count must be 0 or more.")
        if self.wait_timeout <= 0 or self.poll_interval <= 0:
            raise RollbackError("wait_timeout and poll_interval must be more than 0.")
        unknown = set(self.rebuild_if) - set(REBUILD_CONDITIONS)
        if unknown:
            raise RollbackError("rebuild_if has unknown conditions %s; known: %s"
                                % (", ".join(sorted(unknown)), ", ".join(REBUILD_CONDITIONS)))
        current = self.service.get_definition(self.index)
        count = self.service.document_count(self.index) if current is not None else None
        before = describe(current, count)
        result = {"index": self.index, "endpoint": self.service.endpoint, "before": before, "after": before,
                  "rebuilt": False, "reasons": [], "differences": [], "definition_source": None,
                  "exported_to": None, "indexer": None, "resync_command": None, "indexer_result": None,
                  "expected_document_count": self.expected, "document_count": count, "progress": self.progress}

        exported = False
        if self.export_definition:
            if current is None:
                if self.state == "exported":
                    raise RollbackError("Index %s does not exist on %s: there is no definition to export."
                                        % (self.index, self.service.endpoint), **result)
            else:
                exported = write_definition(self.export_definition, current, self.check_mode)
                result["exported_to"] = self.export_definition
                self._note("definition %s %s" % ("would be saved to" if self.check_mode else "saved to",
                                                 self.export_definition) if exported
                           else "definition already saved in %s" % self.export_definition)
        if self.state == "exported":
            result["diff"] = self._diff(before, before)
            return exported, result

        wanted = self._wanted_definition(current, result)
        reasons, differences = self._reasons(current, wanted, count)
        result.update(reasons=reasons, differences=differences)
        if not reasons:
            self._note("nothing to rebuild: %s" % self._state_words(current, count))
            result["diff"] = self._diff(before, before)
            return exported, result

        plan = self._resync_plan()
        result.update(plan)
        if self.expected is None and count:
            # A rebuild must bring back at least what the index held before it.
            self.expected = count
            result["expected_document_count"] = count
        predicted = {"exists": True, "field_count": len(wanted["fields"]), "document_count": self.expected,
                     "etag": None}
        result["would_drop"] = {"index": self.index, "field_count": before["field_count"],
                                "document_count": count} if current is not None else None
        if self.check_mode:
            self._note("would %s index %s (%s), then refill it with %s" % (
                "drop and re-create" if current is not None else "create", self.index, "; ".join(reasons),
                self._resync_words(plan)))
            result.update(after=predicted, rebuilt=True, diff=self._diff(before, predicted))
            return True, result
        if not self.confirm:
            raise RollbackError(
                "Index %s needs a rebuild (%s), which %s and leaves it empty until %s has refilled it. Set "
                "confirm: true to go ahead (check mode shows the plan without it)." % (
                    self.index, "; ".join(reasons),
                    "drops its %s documents" % count if current is not None else "creates it",
                    self._resync_words(plan)), **result)
        if self.validate_with_service:
            self._validate_with_service(wanted, result)

        if current is not None:
            self.service.delete_index(self.index)
            self._note("dropped index %s (%s documents)" % (self.index, count))
        saved_in = self.definition_file or self.export_definition
        try:
            self.service.create_index(wanted, what="Re-creating index %s (it is missing now; its definition is in "
                                      "%s)" % (self.index, saved_in or "this result's definition"))
        except RollbackError as error:
            error.details.update(result)
            if not saved_in:
                # Only in memory otherwise. Read from the service, it holds no secret values (the service
                # never returns them); a definition_file, which might, is never echoed.
                error.details["definition"] = wanted
            raise
        self._note("created index %s with %d fields" % (self.index, len(wanted["fields"])))
        result["rebuilt"] = True
        try:
            self._refill(plan, result)
        except RollbackError as error:
            # The index was re-created: the failure must show it as it is now, not as it was.
            try:
                result["after"] = describe(self.service.get_definition(self.index), result.get("document_count"))
            except RollbackError:
                pass
            error.details.update(result)
            raise
        after_definition = self.service.get_definition(self.index)
        final_count = self.service.document_count(self.index)
        result.update(after=describe(after_definition, final_count), document_count=final_count)
        result["diff"] = self._diff(before, result["after"])
        return True, result

    # -- decisions ---------------------------------------------------------------------------
    def _wanted_definition(self, current, result):
        if self.definition_file:
            wanted = load_definition(self.definition_file)
            result["definition_source"] = self.definition_file
            if wanted.get("name") != self.index:
                raise RollbackError("definition_file %s defines index %r, not %r: give the file saved for this "
                                    "index." % (self.definition_file, wanted.get("name"), self.index), **result)
        elif current is not None:
            wanted = current
            result["definition_source"] = "current"
        else:
            raise RollbackError("Index %s does not exist on %s and no definition_file was given: there is no "
                                "definition to re-create it from." % (self.index, self.service.endpoint), **result)
        problems = definition_problems(wanted)
        if problems:
            raise RollbackError("The definition of index %s is not valid, nothing was changed: %s."
                                % (self.index, "; ".join(problems)), problems=problems, **result)
        return clean_definition(wanted)

    def _reasons(self, current, wanted, count):
        reasons, differences = [], []
        if current is None:
            if "missing" in self.rebuild_if or self.force:
                reasons.append("the index is missing")
            return reasons, differences
        if self.definition_file:
            differences = definition_differences(wanted, current)
            if differences and "definition_differs" in self.rebuild_if:
                reasons.append("its definition differs from %s (%s)" % (self.definition_file, "; ".join(differences)))
        if self.expected is not None and count < self.expected and "short_of_documents" in self.rebuild_if:
            reasons.append("it holds %d documents, fewer than the expected %d" % (count, self.expected))
        if self.force and not reasons:
            reasons.append("force")
        return reasons, differences

    @staticmethod
    def _state_words(current, count):
        return "the index exists with %d fields and %s documents" % (len(current.get("fields") or []), count)

    def _resync_plan(self):
        if self.resync_command:
            return {"indexer": None, "resync_command": list(self.resync_command)}
        if self.indexer_name:
            definition = self.service.indexer(self.indexer_name)
            if definition.get("targetIndexName") != self.index:
                raise RollbackError("Indexer %s fills index %s, not %s." % (
                    self.indexer_name, definition.get("targetIndexName"), self.index))
            return self._idle({"indexer": self.indexer_name, "resync_command": None})
        found = self.service.indexers_of(self.index)
        if len(found) == 1:
            return self._idle({"indexer": found[0], "resync_command": None})
        if not found:
            raise RollbackError("No indexer fills index %s, so a rebuild would leave it empty: give resync_command "
                                "(the job that pushes its documents) or indexer. Nothing was changed." % self.index)
        raise RollbackError("Several indexers fill index %s (%s): name the one to run with indexer."
                            % (self.index, ", ".join(found)))

    def _idle(self, plan):
        """The plan, once its indexer is known not to be running (a second run would be refused)."""
        last = self.service.indexer_status(plan["indexer"]).get("lastResult") or {}
        if last.get("status") == "inProgress":
            raise RollbackError("Indexer %s is running now (started %s); a rebuild would race it. Wait for it to "
                                "finish and run the task again. Nothing was changed." % (
                                    plan["indexer"], last.get("startTime")))
        return plan

    @staticmethod
    def _resync_words(plan):
        if plan.get("indexer"):
            return "indexer %s" % plan["indexer"]
        return "the re-sync command (%s)" % " ".join(plan["resync_command"])

    def _validate_with_service(self, wanted, result):
        """Have the service validate the definition on a temporary index, so a refusal drops nothing."""
        probe = dict(wanted, name=("%s-validate-%s" % (self.index[:100], uuid.uuid4().hex[:8])).replace("--", "-"))
        self.service.create_index(probe, what="Validating the definition of index %s (on a temporary index; "
                                  "nothing was changed)" % self.index)
        self.service.delete_index(probe["name"], what="Deleting the temporary index %s" % probe["name"])
        self._note("the service accepted the definition (temporary index %s created and deleted)" % probe["name"])

    # -- refill and wait ---------------------------------------------------------------------
    def _refill(self, plan, result):
        deadline = self.clock() + self.wait_timeout
        if plan.get("indexer"):
            self._run_indexer(plan["indexer"], deadline, result)
        else:
            self._run_command(plan["resync_command"], deadline, result)
        self._wait_for_documents(deadline, result)

    def _run_indexer(self, name, deadline, result):
        previous = (self.service.indexer_status(name).get("lastResult") or {}).get("startTime")
        self.service.reset_and_run(name)
        self._note("reset and started indexer %s" % name)
        while True:
            last = self.service.indexer_status(name).get("lastResult") or {}
            # The run started here is the first result newer than the one before the reset (the
            # reset itself shows up as a result of its own).
            ours = last.get("startTime") != previous and last.get("status") != "reset"
            result["indexer_result"] = _run_view(last) if ours else None
            if ours and last.get("status") == "success":
                self._note("indexer %s succeeded: %s items" % (name, last.get("itemsProcessed")))
                return
            if ours and last.get("status") == "transientFailure":
                result["document_count"] = self.service.document_count(self.index)
                raise RollbackError(
                    "Indexer %s failed: %s. Index %s was re-created and now holds %s documents%s; fix the cause and "
                    "run the task again (the index is short of documents, so it will be rebuilt)." % (
                        name, last.get("errorMessage") or "no error message", self.index, result["document_count"],
                        " of the expected %d" % self.expected if self.expected is not None else ""), **result)
            if self.clock() >= deadline:
                result["document_count"] = self.service.document_count(self.index)
                raise RollbackError("Indexer %s was still running after wait_timeout (%ss); index %s holds %s "
                                    "documents so far." % (name, self.wait_timeout, self.index,
                                                           result["document_count"]), **result)
            self.sleep(self.poll_interval)

    def _run_command(self, argv, deadline, result):
        env = dict(os.environ, AZURE_SEARCH_ENDPOINT=self.service.endpoint, AZURE_SEARCH_INDEX=self.index)
        remaining = max(1.0, deadline - self.clock())
        self._note("running the re-sync command %s" % argv[0])
        try:
            # run_command needs an AnsibleModule, which module_utils classes never get.
            done = self.runner(  # pylint: disable=ansible-bad-function
                argv, capture_output=True, text=True, timeout=remaining, env=env, check=False)
        except OSError as error:
            raise RollbackError("The re-sync command %s could not start: %s. Index %s was re-created empty."
                                % (argv[0], error.strerror or error, self.index), **result)
        except subprocess.TimeoutExpired:
            raise RollbackError("The re-sync command was still running after wait_timeout (%ss) and was stopped; "
                                "index %s holds %s documents." % (self.wait_timeout, self.index,
                                                                  self.service.document_count(self.index)), **result)
        result["command_rc"] = done.returncode
        result["command_stdout"] = (done.stdout or "")[-OUTPUT_TAIL:]
        result["command_stderr"] = (done.stderr or "")[-OUTPUT_TAIL:]
        if done.returncode != 0:
            result["document_count"] = self.service.document_count(self.index)
            last_line = ((done.stderr or "").strip().splitlines() or ["no output on stderr"])[-1]
            raise RollbackError("The re-sync command exited with %d: %s. Index %s was re-created and holds %s "
                                "documents." % (done.returncode, last_line, self.index, result["document_count"]),
                                **result)
        self._note("the re-sync command finished")

    def _wait_for_documents(self, deadline, result):
        if self.expected is None:
            return
        while True:
            count = self.service.document_count(self.index)
            result["document_count"] = count
            if count >= self.expected:
                self._note("index %s holds %d documents (expected %d)" % (self.index, count, self.expected))
                return
            if self.clock() >= deadline:
                raise RollbackError(
                    "Index %s was rebuilt but holds %d documents, fewer than the expected %d, after wait_timeout "
                    "(%ss): the source gave fewer documents, or the refill is slow." % (
                        self.index, count, self.expected, self.wait_timeout), **result)
            self.sleep(min(self.poll_interval, max(0.0, deadline - self.clock())))

    def _diff(self, before, after):
        def text(state):
            if not state["exists"]:
                return "index %s: missing\n" % self.index
            return "index %s: %d fields, %s documents\n" % (self.index, state["field_count"], state["document_count"])
        return {"before": text(before), "after": text(after)}
