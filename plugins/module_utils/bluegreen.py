# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Roll a blue/green deployment controller back through its HTTP API (mvp011).

The controller answers three calls (paths configurable):

    GET  /deployment/status    {"currentEnvironment": "green", "status": "stable"|"switching",
                                "environments": {"blue": {"version", "health"}, ...},
                                "deploymentHistory": [{"environment", "version", "timestamp", "action"}, ...]}
    POST /deployment/rollback  switch traffic back to the previous environment
    GET  /health               {"health": "healthy", "version", "environment"} of the active environment

:class:`ControllerClient` is the HTTP side (httpx, retries, a POST that is never
sent twice blindly); :class:`BlueGreenRollback` is the procedure: decide by
desired state, predict, act, wait for the switch, verify.  Neither imports
AnsibleModule.

The desired state is "environment X serves traffic" and/or "version V serves
traffic".  Without either, the procedure still refuses the one re-run that
hurts: when the active environment is healthy and the previous one is not
(which is exactly the state after a successful rollback), it changes nothing.
"""

from __future__ import annotations

import os
import ssl
import time
import traceback
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.health import describe_exception

try:
    import httpx
except ImportError:  # pragma: no cover - reported by the module via missing_required_lib
    httpx = None
    HTTPX_IMPORT_ERROR = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None

DEFAULT_PATHS = {"status": "/deployment/status", "rollback": "/deployment/rollback", "health": "/health"}
# History actions that move traffic to the entry's environment.
TRAFFIC_ACTIONS = ("switch", "rollback")
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_S = 30.0
_MAX_TEXT = 300


# --------------------------------------------------------------------------
# What the controller reports, in plain data
# --------------------------------------------------------------------------


class ControllerStatus:
    """A parsed ``GET /deployment/status`` body."""

    def __init__(self, body):
        if not isinstance(body, dict) or not isinstance(body.get("currentEnvironment"), str):
            raise RollbackError(
                "The controller's status has no currentEnvironment; is status_path right? Got: %s" % _short(body),
                status_body=body if isinstance(body, dict) else None,
            )
        self.raw = body
        self.current = body["currentEnvironment"]
        state = body.get("status")
        self.switching = state == "switching" or bool(body.get("switching"))
        history = body.get("deploymentHistory") or []
        self.history = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
        environments = body.get("environments") if isinstance(body.get("environments"), dict) else {}
        self.environments = {}
        for name, env in environments.items():
            env = env if isinstance(env, dict) else {}
            self.environments[name] = {"version": _text(env.get("version")), "health": _text(env.get("health"))}
        # A controller that reports no per-environment versions: take each one's last deployment.
        for entry in self.history:
            name = entry.get("environment")
            if not isinstance(name, str):
                continue
            env = self.environments.setdefault(name, {"version": None, "health": None})
            if name not in environments and entry.get("version") is not None:
                env["version"] = _text(entry.get("version"))
        self.last_operation = body.get("lastOperation") if isinstance(body.get("lastOperation"), dict) else None

    def version_of(self, environment):
        return (self.environments.get(environment) or {}).get("version")

    def health_of(self, environment):
        return (self.environments.get(environment) or {}).get("health")

    def previous_environment(self):
        """The environment that served traffic before the current one, or None.

        From the history first (the last switch or rollback to another
        environment); with two environments and no such entry, the other one.
        """
        for entry in reversed(self.history):
            name = entry.get("environment")
            if entry.get("action") in TRAFFIC_ACTIONS and isinstance(name, str) and name != self.current:
                return name
        others = [name for name in self.environments if name != self.current]
        return others[0] if len(others) == 1 else None

    def active(self):
        return {"environment": self.current, "version": self.version_of(self.current),
                "health": self.health_of(self.current)}

    def history_tail(self, count):
        return [dict(h) for h in self.history[-count:]] if count > 0 else []


class Plan:
    """What the procedure decided: ``action`` is ``rollback`` or ``none``."""

    def __init__(self, action, target=None, target_version=None, reason="", warnings=None):
        self.action = action
        self.target = target
        self.target_version = target_version
        self.reason = reason
        self.warnings = list(warnings or [])


def matches(environment, version, target_environment, expected_version):
    """Whether (environment, version) is the desired state (unset parts match anything)."""
    if target_environment and environment != target_environment:
        return False
    if expected_version is not None and version != expected_version:
        return False
    return True


def plan_rollback(status, target_environment=None, expected_version=None, active_healthy=None):
    """Decide from the status alone; raises RollbackError (nothing changed) when no rollback can help.

    ``active_healthy`` is what ``/health`` said about the active environment
    (None when unknown); it matters only without a desired state.
    """
    current = status.current
    current_version = status.version_of(current)
    desired = bool(target_environment) or expected_version is not None
    if desired and matches(current, current_version, target_environment, expected_version):
        return Plan("none", current, current_version,
                    "%s is active and runs %s, as requested" % (current, _show(current_version)))

    previous = status.previous_environment()
    previous_version = status.version_of(previous) if previous else None
    summary = _environments_summary(status)
    if previous is None or previous_version is None:
        raise RollbackError(
            "Nothing to roll back to: %s is active and %s. Nothing was changed."
            % (current, "no previous environment is known" if previous is None
               else "%s has no deployment" % previous),
            active_environment=current, active_version=current_version, environments=status.environments,
        )
    if desired and not matches(previous, previous_version, target_environment, expected_version):
        wanted = " and ".join(p for p in (
            "environment %s" % target_environment if target_environment else "",
            "version %s" % expected_version if expected_version is not None else "") if p)
        raise RollbackError(
            "A rollback cannot reach %s: it switches traffic from %s to %s, which runs %s (%s). Nothing was changed."
            % (wanted, current, previous, _show(previous_version), summary),
            active_environment=current, active_version=current_version, environments=status.environments,
        )
    previous_health = status.health_of(previous)
    if previous_health == "unhealthy":
        if not desired and active_healthy:
            return Plan("none", current, current_version,
                        "%s (%s) is active and healthy, and the previous environment %s (%s) is reported "
                        "unhealthy: a rollback would make things worse" % (current, _show(current_version),
                                                                           previous, _show(previous_version)))
        raise RollbackError(
            "Not rolling back to %s: the controller reports it unhealthy (it runs %s). %s stays active with %s. "
            "Nothing was changed." % (previous, _show(previous_version), current, _show(current_version)),
            active_environment=current, active_version=current_version, environments=status.environments,
        )
    warnings = []
    if not desired and active_healthy:
        warnings.append(
            "Neither target_environment nor expected_version was given and %s is healthy, so this rollback "
            "is not idempotent: running it again switches back. Name the version to make a re-run a no-op." % current)
    reason = "switch traffic from %s (%s) back to %s (%s)" % (
        current, _show(current_version), previous, _show(previous_version))
    return Plan("rollback", previous, previous_version, reason, warnings)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class ControllerClient:
    """The controller's HTTP API over httpx, with retries on 429/5xx/connection errors.

    GETs are simply retried. The rollback POST is re-sent only after a fresh
    status shows it did not take effect (no switch running, traffic still on
    the old environment), so a lost answer never makes a second switch.
    """

    def __init__(self, base_url, paths=None, headers=None, verify=True, timeout=10.0, retries=3, backoff=1.0,
                 transport=None, clock=time.monotonic, sleep=time.sleep):
        problem = validate_base_url(base_url)
        if problem:
            raise RollbackError(problem + " Nothing was changed.")
        if timeout <= 0:
            raise RollbackError("timeout must be more than 0 seconds.")
        if retries < 0:
            raise RollbackError("api_retries must be 0 or more.")
        if isinstance(verify, str) and not os.path.exists(verify):
            raise RollbackError("CA bundle %r does not exist." % verify)
        self.base_url = base_url.rstrip("/")
        self.paths = dict(DEFAULT_PATHS, **{k: v for k, v in (paths or {}).items() if v})
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._client = httpx.Client(headers=dict(headers or {}), verify=_ssl_verify(verify), transport=transport,
                                    timeout=self.timeout, follow_redirects=False)

    def url(self, name):
        path = self.paths[name]
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def close(self):
        self._client.close()

    # -- calls ------------------------------------------------------------------------------
    def status(self):
        response = self._get_with_retries("status")
        body = self._json(response, "status")
        if response.status_code != 200:
            raise RollbackError(
                "GET %s answered HTTP %s: %s" % (self.url("status"), response.status_code, _error_text(body, response)),
                http_status=response.status_code)
        return ControllerStatus(body)

    def health(self):
        """One probe of the health URL: plain evidence, never raises."""
        url = self.url("health")
        started = time.monotonic()
        try:
            response = self._client.get(url)
        except httpx.HTTPError as exc:
            return {"url": url, "ok": False, "error": describe_exception(exc, self.timeout), "status_code": None,
                    "response_time_ms": None, "health": None, "version": None, "environment": None}
        elapsed = round((time.monotonic() - started) * 1000, 1)
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        return {"url": url, "ok": True, "error": None, "status_code": response.status_code,
                "response_time_ms": elapsed, "health": _text(body.get("health")),
                "version": _text(body.get("version")), "environment": _text(body.get("environment"))}

    def rollback(self, before):
        """POST the rollback; returns ``(http_status, body, attempts)``.

        Raises RollbackError for an answer that means "no" (4xx), or when every
        attempt failed without the controller starting a switch.
        """
        url = self.url("rollback")
        attempts = []
        for attempt in range(self.retries + 1):
            wait = self._backoff(attempt)
            try:
                response = self._client.post(url)
            except httpx.HTTPError as exc:
                attempts.append({"status_code": None, "error": describe_exception(exc, self.timeout)})
            else:
                body = self._json(response, "rollback")
                if response.status_code < 300:
                    attempts.append({"status_code": response.status_code, "error": None})
                    return response.status_code, body, attempts
                if response.status_code not in RETRY_STATUSES:
                    raise RollbackError(
                        "The controller refused the rollback: POST %s answered HTTP %s: %s. Nothing was changed; "
                        "%s is active." % (url, response.status_code, _error_text(body, response), before.current),
                        http_status=response.status_code, response=body, active_environment=before.current,
                        active_version=before.version_of(before.current))
                attempts.append({"status_code": response.status_code, "error": _error_text(body, response)})
                wait = self._retry_after(response, wait)
            # The answer was an error or got lost: did the switch start anyway? Never send it twice blindly.
            now = self.status()
            if now.switching or now.current != before.current:
                return None, {"status": "switching" if now.switching else "completed",
                              "note": "no success answer, but the controller switched"}, attempts
            if attempt < self.retries:
                self._sleep(wait)
        raise RollbackError(
            "POST %s failed %d time(s), last: %s. The controller did not start a switch; %s is active."
            % (url, len(attempts), _attempt_text(attempts[-1]), before.current),
            attempts=attempts, active_environment=before.current, active_version=before.version_of(before.current))

    # -- helpers ----------------------------------------------------------------------------
    def _get_with_retries(self, name):
        url = self.url(name)
        last = None
        for attempt in range(self.retries + 1):
            wait = self._backoff(attempt)
            try:
                response = self._client.get(url)
            except httpx.HTTPError as exc:
                last = describe_exception(exc, self.timeout)
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                last = "HTTP %s" % response.status_code
                wait = self._retry_after(response, wait)
            if attempt < self.retries:
                self._sleep(wait)
        raise RollbackError("GET %s failed %d time(s), last: %s. Is the controller reachable at %s?"
                            % (url, self.retries + 1, last, self.base_url))

    def _backoff(self, attempt):
        return self.backoff * (2 ** attempt)

    @staticmethod
    def _retry_after(response, default):
        value = response.headers.get("Retry-After")
        if not value:
            return default
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                return default
        return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)

    def _json(self, response, name):
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            if response.status_code < 300:
                raise RollbackError("%s answered HTTP %s with a body that is not JSON: %s"
                                    % (self.url(name), response.status_code, _short(response.text)))
            return {"text": _short(response.text)}


# --------------------------------------------------------------------------
# The procedure
# --------------------------------------------------------------------------


class BlueGreenRollback:
    """One rollback request: decide, predict, act, wait, verify."""

    def __init__(self, client, target_environment=None, expected_version=None, wait_timeout=300.0,
                 poll_interval=1.0, verify_health=True, health_timeout=60.0, max_response_time_ms=3000.0,
                 history_count=5, check_mode=False, clock=time.monotonic, sleep=time.sleep):
        if wait_timeout <= 0:
            raise RollbackError("wait_timeout must be more than 0 seconds.")
        if poll_interval <= 0:
            raise RollbackError("poll_interval must be more than 0 seconds.")
        if health_timeout < 0 or max_response_time_ms <= 0:
            raise RollbackError("health_timeout must be 0 or more and max_response_time_ms more than 0.")
        self.client = client
        self.target_environment = target_environment or None
        self.expected_version = expected_version if expected_version not in ("",) else None
        self.wait_timeout = float(wait_timeout)
        self.poll_interval = float(poll_interval)
        self.verify_health = verify_health
        self.health_timeout = float(health_timeout)
        self.max_response_time_ms = float(max_response_time_ms)
        self.history_count = history_count
        self.check_mode = check_mode
        self._clock = clock
        self._sleep = sleep
        self.warnings = []

    def run(self):
        started = self._clock()
        before = self._stable_status(started + self.wait_timeout, "before deciding")
        self._check_target_known(before)
        # Evidence, and without a desired state the input that keeps a re-run from switching back.
        health_before = self.client.health()
        plan = plan_rollback(before, self.target_environment, self.expected_version,
                             active_healthy=self._judge(health_before, None)[0])
        self.warnings.extend(plan.warnings)
        result = {
            "rolled_back": False,
            "before": before.active(),
            "history": before.history_tail(self.history_count),
            "environments": before.environments,
            "health_before": health_before,
            "operation": {"action": plan.action, "reason": plan.reason, "from": before.current,
                          "to": plan.target, "from_version": before.version_of(before.current),
                          "to_version": plan.target_version, "status": "none", "progress": []},
        }
        if plan.action == "none":
            result["after"] = before.active()
            if self.verify_health:
                result["health"] = self._verify(before.current, before.version_of(before.current),
                                                started, already=True)
            return self._finish(False, result)

        predicted = {"environment": plan.target, "version": plan.target_version,
                     "health": before.health_of(plan.target)}
        if self.check_mode:
            result["operation"]["status"] = "predicted"
            result["rolled_back"] = True
            result["after"] = predicted
            return self._finish(True, result)

        http_status, answer, attempts = self.client.rollback(before)
        result["operation"].update(http_status=http_status, response=answer, attempts=attempts)
        after = self._wait_for_switch(before, plan, started, result["operation"])
        result["rolled_back"] = True
        result["after"] = after.active()
        result["history"] = after.history_tail(self.history_count)
        result["operation"]["status"] = "succeeded"
        if self.verify_health:
            result["health"] = self._verify(plan.target, plan.target_version, started)
        return self._finish(True, result)

    # -- steps ------------------------------------------------------------------------------
    def _check_target_known(self, status):
        if self.target_environment and status.environments and self.target_environment not in status.environments:
            raise RollbackError(
                "Unknown target_environment %r: the controller has %s. Nothing was changed."
                % (self.target_environment, ", ".join(sorted(status.environments))),
                active_environment=status.current)

    def _stable_status(self, deadline, when):
        """Read the status; if a switch is running, wait for it to end (a re-run during a rollback)."""
        status = self.client.status()
        while status.switching:
            if self._clock() >= deadline:
                raise RollbackError(
                    "A switch is still in progress on the controller %s (%s is active); waited %.0fs. "
                    "Nothing was changed." % (when, status.current, self.wait_timeout),
                    active_environment=status.current, switching=status.raw.get("switching"))
            self._sleep(self.poll_interval)
            status = self.client.status()
        return status

    def _wait_for_switch(self, before, plan, started, operation):
        deadline = started + self.wait_timeout
        progress = operation["progress"]
        while True:
            status = self.client.status()
            elapsed = round(self._clock() - started, 3)
            entry = {"elapsed_s": elapsed, "current_environment": status.current,
                     "status": "switching" if status.switching else "stable"}
            if not progress or progress[-1]["current_environment"] != entry["current_environment"] \
                    or progress[-1]["status"] != entry["status"]:
                progress.append(entry)
            if not status.switching and status.current == plan.target:
                return status
            failed = self._failed_operation(status, plan, operation)
            if failed:
                raise RollbackError(
                    "The controller reports the rollback to %s failed: %s %s is still active and runs %s."
                    % (plan.target, failed, status.current, _show(status.version_of(status.current))),
                    active_environment=status.current, active_version=status.version_of(status.current),
                    last_operation=status.last_operation, progress=progress)
            if not status.switching and status.current != before.current:
                raise RollbackError(
                    "After the rollback %s is active, neither %s (expected) nor %s (before)."
                    % (status.current, plan.target, before.current),
                    active_environment=status.current, active_version=status.version_of(status.current))
            if self._clock() >= deadline:
                raise RollbackError(
                    "The controller accepted the rollback but did not switch traffic to %s within %.0fs: "
                    "%s is still the active environment (version %s, status %s)."
                    % (plan.target, self.wait_timeout, status.current, _show(status.version_of(status.current)),
                       entry["status"]),
                    active_environment=status.current, active_version=status.version_of(status.current),
                    progress=progress, history=status.history_tail(self.history_count))
            self._sleep(min(self.poll_interval, max(deadline - self._clock(), 0.0)))

    @staticmethod
    def _failed_operation(status, plan, operation):
        """The controller's own word that our switch failed (``lastOperation``), if it gives one."""
        last = status.last_operation
        if status.switching or not last or last.get("status") != "failed" or last.get("to") != plan.target:
            return None
        answer = operation.get("response") or {}
        if answer.get("startedAt") and last.get("startedAt") != answer.get("startedAt"):
            return None  # an older failure, not ours
        return (last.get("message") or "status failed").rstrip(".") + "."

    def _verify(self, environment, version, started, already=False):
        """Probe health until it is healthy, fast and on the right version, or health_timeout passes."""
        deadline = self._clock() + self.health_timeout
        attempts = 0
        while True:
            attempts += 1
            probe = self.client.health()
            healthy, problems = self._judge(probe, (environment, version))
            if healthy or self._clock() >= deadline:
                break
            self._sleep(min(self.poll_interval, max(deadline - self._clock(), 0.0)))
        evidence = dict(probe, healthy=healthy, problems=problems, attempts=attempts,
                        max_response_time_ms=self.max_response_time_ms)
        if not healthy:
            what = ("%s is active and runs %s, as requested, but it is not healthy, so a rollback would not help"
                    % (environment, _show(version)) if already else
                    "Traffic was switched to %s (%s), but it is not healthy" % (environment, _show(version)))
            raise RollbackError("%s: %s. Active environment: %s."
                                % (what, "; ".join(problems), probe.get("environment") or environment),
                                health=evidence, active_environment=environment, active_version=version,
                                rolled_back=not already)
        return evidence

    def _judge(self, probe, expected):
        problems = []
        if not probe["ok"]:
            problems.append("health request failed: %s" % probe["error"])
        else:
            if probe["health"] != "healthy":
                problems.append("health is %s (HTTP %s)" % (_show(probe["health"]), probe["status_code"]))
            if probe["response_time_ms"] > self.max_response_time_ms:
                problems.append("response time %.0f ms exceeds %.0f ms" % (probe["response_time_ms"],
                                                                           self.max_response_time_ms))
            if expected:
                environment, version = expected
                if probe["environment"] and probe["environment"] != environment:
                    problems.append("health answers from %s, expected %s" % (probe["environment"], environment))
                if version is not None and probe["version"] and probe["version"] != version:
                    problems.append("health reports version %s, expected %s" % (probe["version"], version))
        return not problems, problems

    def _finish(self, changed, result):
        result["diff"] = {
            "before": {"active_environment": result["before"]["environment"], "version": result["before"]["version"]},
            "after": {"active_environment": result["after"]["environment"], "version": result["after"]["version"]},
            "before_header": "%s before" % self.client.base_url,
            "after_header": "%s after" % self.client.base_url,
        }
        result["warnings"] = self.warnings
        return changed, result


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def validate_base_url(url):
    if not isinstance(url, str) or not url:
        return "base_url is required."
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "base_url %r must be an http:// or https:// URL with a host name." % url
    return None


def plain_http_secret_warning(base_url, headers):
    """A warning when credentials would travel over plain HTTP to a host that is not loopback."""
    host = urlsplit(base_url).hostname or ""
    if headers and base_url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
        return ("headers are sent over plain http:// to %s; use https:// so a token cannot be read on the way."
                % host)
    return None


def _ssl_verify(verify):
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return verify


def _attempt_text(attempt):
    if attempt["status_code"] is None:
        return attempt["error"]
    return "HTTP %s %s" % (attempt["status_code"], attempt["error"] or "")


def _environments_summary(status):
    return ", ".join("%s runs %s" % (name, _show(env.get("version"))) for name, env in sorted(status.environments.items()))


def _error_text(body, response):
    if isinstance(body, dict):
        for key in ("message", "error", "text"):
            if body.get(key):
                return _short(body[key])
    return _short(response.reason_phrase or "")


def _text(value):
    return None if value is None else str(value)


def _show(value):
    return "nothing" if value is None else str(value)


def _short(value):
    text = str(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 3] + "..."
