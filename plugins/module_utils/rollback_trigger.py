# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Automatic rollback triggers: a policy, metrics sources, and an evaluator that only observes.

mvp011-blue-green-rollback-playbook.md "Rollback Triggers" is the default policy:

    health_check_failures  3 consecutive failures
    error_rate             > 5 % for 2 minutes
    response_time          > 3 s average for 5 minutes
    memory                 > 90 % for 10 minutes
    cpu                    > 95 % for 5 minutes

"for N minutes" means the condition held over the whole window, not that one
sample crossed the line: a trigger fires only when the source has data covering
the window and every part of it is over the threshold. Until the window is
covered the trigger is ``pending``. A source that cannot be read makes its
triggers ``unknown``, never ``ok``: a monitoring outage must not read as a
healthy service. A source that does not measure a metric at all reports
``not_observed`` for it (HTTP probes know nothing of memory).

Three sources, one interface (``collect()`` once per interval, ``observe(policy)``):

* :class:`HttpProbeSource`: live probes of health URLs; the windows are over
  its own samples, so a watch that started 30 s ago cannot claim 2 minutes.
* :class:`PrometheusSource`: the Prometheus HTTP API; "held for the window" is
  asked of Prometheus itself with ``min_over_time((expr)[window:step])``.
* :class:`AzureMonitorSource`: Azure Monitor metrics of an App Service app
  (Requests, Http5xx, HttpResponseTime) and its plan (CpuPercentage,
  MemoryPercentage), in one-minute grains; every grain of the window must be over.

:class:`TriggerWatch` evaluates every ``interval`` seconds until a trigger fires
or the watch window ends; acting on the answer is the roles' job.
"""

from __future__ import annotations

import datetime
import math
import re
import string
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

try:
    import httpx
except ImportError:  # pragma: no cover - reported by the module
    httpx = None
    HTTPX_IMPORT_ERROR = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None


# name -> threshold, window, category (mvp011's recovery-time classes) and unit.
DEFAULT_POLICY = {
    "health_check_failures": {"threshold": 3, "window_s": 0, "category": "critical", "unit": "consecutive failures"},
    "error_rate": {"threshold": 5.0, "window_s": 120, "category": "critical", "unit": "%"},
    "response_time": {"threshold": 3000.0, "window_s": 300, "category": "performance", "unit": "ms"},
    "memory": {"threshold": 90.0, "window_s": 600, "category": "performance", "unit": "%"},
    "cpu": {"threshold": 95.0, "window_s": 300, "category": "performance", "unit": "%"},
}

# mvp011 "Recovery Time Objectives": what a fired trigger of each class asks for.
CATEGORY_RESPONSE = {
    "critical": {"severity": "P1", "recovery_target_s": 120},
    "performance": {"severity": "P2", "recovery_target_s": 300},
    "feature": {"severity": "P3", "recovery_target_s": 900},
    "non_critical": {"severity": "P4", "recovery_target_s": 1800},
}

FIRED, OK, PENDING, UNKNOWN, NOT_OBSERVED = "fired", "ok", "pending", "unknown", "not_observed"


@dataclass
class Trigger:
    name: str
    threshold: float
    window_s: float
    category: str
    unit: str
    enabled: bool = True


class TriggerPolicy:
    """The runbook's triggers with the user's overrides; every problem reported at once."""

    def __init__(self, triggers):
        self.triggers = triggers

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None) -> "TriggerPolicy":
        overrides = dict(overrides or {})
        errors = []
        unknown = sorted(set(overrides) - set(DEFAULT_POLICY))
        if unknown:
            errors.append("unknown trigger(s) %s; known: %s" % (", ".join(unknown), ", ".join(DEFAULT_POLICY)))
        triggers = []
        for name, default in DEFAULT_POLICY.items():
            spec = dict(default)
            given = overrides.get(name) or {}
            if not isinstance(given, Mapping):
                errors.append("%s must be a dict of threshold, window_s, category, enabled" % name)
                continue
            bad_keys = sorted(set(given) - {"threshold", "window_s", "category", "enabled"})
            if bad_keys:
                errors.append("%s: unknown key(s) %s (threshold, window_s, category, enabled)" % (name, ", ".join(bad_keys)))
            spec.update({k: v for k, v in given.items() if k in ("threshold", "window_s", "category", "enabled")})
            try:
                threshold, window = float(spec["threshold"]), float(spec["window_s"])
            except (TypeError, ValueError):
                errors.append("%s: threshold and window_s must be numbers" % name)
                continue
            if math.isnan(threshold) or threshold <= 0:
                errors.append("%s: threshold must be more than 0, got %r" % (name, spec["threshold"]))
            if math.isnan(window) or window < 0:
                errors.append("%s: window_s must be 0 or more, got %r" % (name, spec["window_s"]))
            if spec["category"] not in CATEGORY_RESPONSE:
                errors.append("%s: category must be one of %s" % (name, ", ".join(CATEGORY_RESPONSE)))
            triggers.append(Trigger(name, threshold, window, spec["category"], default["unit"], bool(spec.get("enabled", True))))
        if errors:
            raise RollbackError("The trigger policy is invalid: %s. Nothing was evaluated." % "; ".join(errors))
        return cls(triggers)

    def enabled(self):
        return [t for t in self.triggers if t.enabled]

    def to_dict(self):
        return {t.name: {"threshold": t.threshold, "window_s": t.window_s, "category": t.category,
                         "unit": t.unit, "enabled": t.enabled} for t in self.triggers}


@dataclass
class Observation:
    """What a source saw for one trigger."""

    trigger: str
    status: str
    value: float | None = None
    threshold: float | None = None
    window_s: float | None = None
    covered_s: float | None = None
    unit: str | None = None
    detail: str = ""
    evidence: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)


def over(value, threshold):
    return value is not None and value > threshold


# --------------------------------------------------------------------------
# HTTP probes
# --------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    ok: bool
    latency_ms: float | None
    reason: str | None = None


class HttpProbeSource:
    """Probes URLs once per collect(); judges the policy over its own samples.

    ``probe`` is a callable url -> (ok, latency_ms, reason): the module builds it
    on :class:`~health.HealthProbe` so "healthy" means the same here as in
    health_check (status, body match, version).
    """

    name = "http"
    observes = ("health_check_failures", "error_rate", "response_time")

    def __init__(self, urls, probe: Callable[[str], tuple], clock: Callable[[], float] = time.monotonic,
                 keep_s: float = 3600):
        self.urls = list(urls)
        self.probe = probe
        self.clock = clock
        self.keep_s = keep_s
        self.samples = {url: [] for url in self.urls}

    def collect(self):
        now = self.clock()
        for url in self.urls:
            ok, latency_ms, reason = self.probe(url)
            history = self.samples[url]
            history.append(Sample(now, ok, latency_ms, reason))
            while history and now - history[0].at > self.keep_s:
                history.pop(0)

    def observe(self, policy: TriggerPolicy):
        now = self.clock()
        observations = {}
        for trigger in policy.enabled():
            if trigger.name not in self.observes:
                observations[trigger.name] = Observation(trigger.name, NOT_OBSERVED, threshold=trigger.threshold,
                                                         window_s=trigger.window_s, unit=trigger.unit,
                                                         detail="HTTP probes do not measure %s" % trigger.name)
                continue
            worst = None
            for url in self.urls:
                found = self._observe_url(trigger, self.samples[url], now)
                found.evidence["url"] = url
                if worst is None or _rank(found.status) > _rank(worst.status):
                    worst = found
            observations[trigger.name] = worst
        return observations

    @staticmethod
    def _observe_url(trigger, samples, now):
        base = dict(threshold=trigger.threshold, window_s=trigger.window_s, unit=trigger.unit)
        if not samples:
            return Observation(trigger.name, PENDING, detail="no sample taken yet", **base)
        if trigger.name == "health_check_failures":
            trailing = 0
            for sample in reversed(samples):
                if sample.ok:
                    break
                trailing += 1
            last = samples[-1]
            detail = "%d consecutive failed probe(s)" % trailing + (": %s" % last.reason if trailing else "")
            status = FIRED if trailing >= trigger.threshold else OK
            return Observation(trigger.name, status, value=trailing, detail=detail,
                               evidence={"samples": len(samples), "last_reason": last.reason}, **base)
        in_window = [s for s in samples if now - s.at <= trigger.window_s] if trigger.window_s else samples[-1:]
        covered = now - in_window[0].at if in_window else 0.0
        if trigger.name == "error_rate":
            value = round(100.0 * sum(1 for s in in_window if not s.ok) / len(in_window), 2)
        else:
            latencies = [s.latency_ms for s in in_window if s.latency_ms is not None]
            value = round(sum(latencies) / len(latencies), 1) if latencies else None
        # The window counts as covered once the samples span it (less one interval of slack for where
        # the first sample fell): a watch 30 s old cannot claim "for 2 minutes".
        span_needed = trigger.window_s - _interval_of(samples)
        evidence = {"samples": len(in_window), "covered_s": round(covered, 1)}
        if value is None:
            return Observation(trigger.name, UNKNOWN, covered_s=round(covered, 1),
                               detail="no latency measured (every probe failed to connect)", evidence=evidence, **base)
        if covered < span_needed:
            status = PENDING
            detail = "%s %s over %.0f s of samples; the window is %.0f s" % (value, trigger.unit, covered, trigger.window_s)
        else:
            status = FIRED if over(value, trigger.threshold) else OK
            detail = "%s %s over the last %.0f s (threshold %s)" % (value, trigger.unit, covered, trigger.threshold)
        return Observation(trigger.name, status, value=value, covered_s=round(covered, 1), detail=detail,
                           evidence=evidence, **base)


def _interval_of(samples):
    if len(samples) < 2:
        return 0.0
    return (samples[-1].at - samples[0].at) / (len(samples) - 1)


def _rank(status):
    return {NOT_OBSERVED: 0, OK: 1, PENDING: 2, UNKNOWN: 3, FIRED: 4}[status]


# --------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------

# Defaults for the common client-library metric names; `$selector` stands for
# the label matchers such as job="fundrbolt-api" (string.Template syntax: a
# `{%` would start a Jinja tag in a playbook). Each query yields one number in
# the trigger's unit.
DEFAULT_PROMQL = {
    "health_check_failures": None,  # `max(up{$selector})` unless given: 1 while the target answers, 0 when down
    # `or vector(0)`: a service with no 5xx at all has no 5xx series, and without it the
    # numerator is empty and a healthy service would read "unknown" instead of 0 %.
    "error_rate": ('100 * (sum(rate(http_requests_total{$selector,status=~"5.."}[1m])) or vector(0))'
                   ' / sum(rate(http_requests_total{$selector}[1m]))'),
    "response_time": ('1000 * sum(rate(http_request_duration_seconds_sum{$selector}[1m]))'
                      ' / sum(rate(http_request_duration_seconds_count{$selector}[1m]))'),
    "cpu": "100 * avg(rate(process_cpu_seconds_total{$selector}[1m]))",
    "memory": None,  # needs the container's limit: give a query
}


class PrometheusSource:
    """Asks Prometheus whether each condition held over its whole window.

    For a windowed trigger the query is ``min_over_time((expr)[W:step])``:
    the lowest value over the window is above the threshold exactly when the
    condition held all along. ``count_over_time`` of the same subquery says
    how much of the window has data, so a fresh target is ``pending``, not
    ``ok``. Health failures: the last N scrapes of ``up`` all 0.
    """

    name = "prometheus"

    def __init__(self, url, selector, queries=None, scrape_interval_s=15.0, step_s=None,
                 verify=True, timeout=10.0, client=None):
        if httpx is None and client is None:  # pragma: no cover
            raise RollbackError("the httpx Python library is required for the Prometheus source")
        self.url = url.rstrip("/")
        # What results and messages show: a protected Prometheus is reached with user:password@ in the
        # URL, and that must never land in a result or the incident record.
        self.shown_url = without_userinfo(self.url)
        self.selector = selector
        self.scrape_interval_s = float(scrape_interval_s)
        self.step_s = float(step_s or scrape_interval_s)
        self.queries = dict(DEFAULT_PROMQL)
        self.queries.update({k: v for k, v in (queries or {}).items() if v})
        unknown = sorted(set(queries or {}) - set(DEFAULT_PROMQL))
        if unknown:
            raise RollbackError("prometheus queries name unknown trigger(s) %s; known: %s"
                                % (", ".join(unknown), ", ".join(DEFAULT_PROMQL)))
        self.client = client or httpx.Client(verify=verify, timeout=timeout)

    def collect(self):
        """Prometheus keeps the history itself."""

    def query(self, promql):
        """An instant query; the scalar answer or None for an empty result."""
        response = self.client.get(self.url + "/api/v1/query", params={"query": promql})
        try:
            body = response.json()
        except ValueError:
            raise RollbackError("Prometheus at %s answered %s with no JSON" % (self.shown_url, response.status_code))
        if response.status_code != 200 or body.get("status") != "success":
            raise RollbackError("Prometheus rejected the query %s: %s %s" % (
                promql, body.get("errorType", response.status_code), body.get("error", "")))
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            return float(result[1])
        if not result:
            return None
        values = [float(item["value"][1]) for item in result]
        values = [v for v in values if not math.isnan(v)]
        return max(values) if values else None

    def expression(self, trigger):
        template = self.queries.get(trigger.name)
        if trigger.name == "health_check_failures" and not template:
            # `up` is per scrape target: the selector must match the target's labels (job, instance).
            return 'max(up{%s})' % self.selector
        return string.Template(template).safe_substitute(selector=self.selector) if template else None

    def observe(self, policy: TriggerPolicy):
        observations = {}
        for trigger in policy.enabled():
            base = dict(threshold=trigger.threshold, window_s=trigger.window_s, unit=trigger.unit)
            expr = self.expression(trigger)
            if expr is None:
                observations[trigger.name] = Observation(
                    trigger.name, NOT_OBSERVED, detail="no PromQL for %s: give queries.%s" % (trigger.name, trigger.name),
                    **base)
                continue
            try:
                observations[trigger.name] = self._observe(trigger, expr, base)
            except RollbackError as err:
                observations[trigger.name] = Observation(trigger.name, UNKNOWN, detail=err.message, **base)
            except Exception as err:  # noqa: BLE001 - a monitoring outage is "unknown", never "ok"
                observations[trigger.name] = Observation(
                    trigger.name, UNKNOWN, detail="Prometheus at %s unreachable: %s" % (self.shown_url, without_userinfo(_short(err))), **base)
        return observations

    def _observe(self, trigger, expr, base):
        step = "%ds" % max(1, int(self.step_s))
        if trigger.name == "health_check_failures":
            span = int(trigger.threshold * self.scrape_interval_s)
            window = "%ds" % span
            held_down = self.query("max_over_time((%s)[%s:%s])" % (expr, window, step))
            points = self.query("count_over_time((%s)[%s:%s])" % (expr, window, step))
            if held_down is None:
                return Observation(trigger.name, UNKNOWN, detail="no `up` series matches {%s}" % self.selector,
                                   evidence={"query": expr}, **base)
            failing = held_down == 0 and (points or 0) >= trigger.threshold
            return Observation(trigger.name, FIRED if failing else OK, value=0 if held_down else int(points or 0),
                               detail="target down for the last %d scrapes" % int(points or 0) if failing
                               else "target up within the last %s" % window,
                               evidence={"query": expr, "scrapes": points}, **base)
        window = "%ds" % max(1, int(trigger.window_s))
        lowest = self.query("min_over_time((%s)[%s:%s])" % (expr, window, step))
        points = self.query("count_over_time((%s)[%s:%s])" % (expr, window, step))
        current = self.query(expr)
        evidence = {"query": expr, "points": points, "current": current}
        needed = max(1, int(trigger.window_s // self.step_s))
        if lowest is None or current is None:
            return Observation(trigger.name, UNKNOWN, detail="no data for %s" % expr, evidence=evidence, **base)
        covered = (points or 0) * self.step_s
        if (points or 0) < needed:
            return Observation(trigger.name, PENDING, value=round(current, 2), covered_s=covered,
                               detail="%d of %d points in the window so far" % (points or 0, needed),
                               evidence=evidence, **base)
        status = FIRED if over(lowest, trigger.threshold) else OK
        detail = "lowest %.2f %s over the last %s (threshold %s)" % (lowest, trigger.unit, window, trigger.threshold)
        return Observation(trigger.name, status, value=round(lowest, 2), covered_s=covered, detail=detail,
                           evidence=evidence, **base)


# --------------------------------------------------------------------------
# Azure Monitor
# --------------------------------------------------------------------------

SITE_METRICS = ("Requests", "Http5xx", "HttpResponseTime")
PLAN_METRICS = ("CpuPercentage", "MemoryPercentage")


class AzureMonitorSource:
    """App Service metrics in one-minute grains; every grain of a window must be over.

    ``metrics_list`` is ``MonitorManagementClient.metrics.list`` (or a fake in
    unit tests). Grains with no requests carry no error rate or response time:
    a quiet minute neither fires nor clears a trigger, but leaves it pending.
    """

    name = "azure_monitor"
    observes = ("error_rate", "response_time", "memory", "cpu")

    def __init__(self, metrics_list, site_id, plan_id=None, now=None, grain_s=60):
        self.metrics_list = metrics_list
        self.site_id = site_id
        self.plan_id = plan_id
        self.now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.grain_s = grain_s

    def collect(self):
        """Azure Monitor keeps the history itself."""

    def _series(self, resource_id, names, aggregation, window_s):
        end = self.now()
        start = end - datetime.timedelta(seconds=window_s + self.grain_s)
        timespan = "%s/%s" % (start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ"))
        response = self.metrics_list(resource_id, timespan=timespan, interval="PT1M",
                                     metricnames=",".join(names), aggregation=aggregation)
        series = {}
        for metric in response.value or []:
            points = []
            for ts in metric.timeseries or []:
                for point in ts.data or []:
                    points.append((point.time_stamp, point.total, point.average))
            series[metric.name.value] = points
        return series

    def observe(self, policy: TriggerPolicy):
        observations = {}
        for trigger in policy.enabled():
            base = dict(threshold=trigger.threshold, window_s=trigger.window_s, unit=trigger.unit)
            if trigger.name not in self.observes or (trigger.name in ("memory", "cpu") and not self.plan_id):
                detail = ("Azure Monitor has no consecutive-failure count: use the http source"
                          if trigger.name == "health_check_failures" else "no App Service plan given for %s" % trigger.name)
                observations[trigger.name] = Observation(trigger.name, NOT_OBSERVED, detail=detail, **base)
                continue
            try:
                observations[trigger.name] = self._observe(trigger, base)
            except RollbackError as err:
                observations[trigger.name] = Observation(trigger.name, UNKNOWN, detail=err.message, **base)
            except Exception as err:  # noqa: BLE001 - a monitoring outage is "unknown", never "ok"
                observations[trigger.name] = Observation(trigger.name, UNKNOWN,
                                                         detail="Azure Monitor unavailable: %s" % _short(err), **base)
        return observations

    def _observe(self, trigger, base):
        window = max(trigger.window_s, self.grain_s)
        if trigger.name in ("error_rate", "response_time"):
            series = self._series(self.site_id, SITE_METRICS, "Total,Average", window)
            requests = {t: total for t, total, _avg in series.get("Requests", [])}
            errors = {t: total for t, total, _avg in series.get("Http5xx", [])}
            times = {t: avg for t, _total, avg in series.get("HttpResponseTime", [])}
            grains = []
            for stamp in sorted(requests):
                count = requests[stamp] or 0
                if count <= 0:
                    continue
                if trigger.name == "error_rate":
                    grains.append((stamp, 100.0 * (errors.get(stamp) or 0) / count))
                elif times.get(stamp) is not None:
                    grains.append((stamp, 1000.0 * times[stamp]))  # HttpResponseTime is in seconds
        else:
            metric = "CpuPercentage" if trigger.name == "cpu" else "MemoryPercentage"
            series = self._series(self.plan_id, PLAN_METRICS, "Average", window)
            grains = [(t, avg) for t, _total, avg in series.get(metric, []) if avg is not None]
        needed = max(1, int(math.ceil(window / self.grain_s)))
        recent = grains[-needed:]
        evidence = {"grains": [{"time": str(t), "value": round(v, 2)} for t, v in recent]}
        if len(recent) < needed:
            return Observation(trigger.name, PENDING, value=round(recent[-1][1], 2) if recent else None,
                               covered_s=len(recent) * self.grain_s,
                               detail="%d of %d one-minute grains with data" % (len(recent), needed),
                               evidence=evidence, **base)
        lowest = min(v for _t, v in recent)
        status = FIRED if over(lowest, trigger.threshold) else OK
        return Observation(trigger.name, status, value=round(lowest, 2), covered_s=needed * self.grain_s,
                           detail="lowest %.2f %s over the last %d minute(s) (threshold %s)" % (
                               lowest, trigger.unit, needed, trigger.threshold),
                           evidence=evidence, **base)


def without_userinfo(text):
    """Text with the user:password@ of any URL in it removed."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def _short(err):
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


# --------------------------------------------------------------------------
# Evaluation and the watch loop
# --------------------------------------------------------------------------


def verdict(observations):
    """rollback when anything fired; unknown when a trigger could not be judged; else healthy."""
    statuses = [o.status for o in observations.values()]
    if FIRED in statuses:
        return "rollback"
    if UNKNOWN in statuses:
        return "unknown"
    if PENDING in statuses:
        return "watching"
    return "healthy"


def recommendation(observations, policy):
    fired = [o.trigger for o in observations.values() if o.status == FIRED]
    if not fired:
        unknown = [o.trigger for o in observations.values() if o.status == UNKNOWN]
        if unknown:
            return {"action": "investigate", "reason": "cannot judge %s: the metrics source is not answering"
                    % ", ".join(unknown)}
        return {"action": "none", "reason": "no trigger fired"}
    by_name = {t.name: t for t in policy.triggers}
    order = list(CATEGORY_RESPONSE)
    category = min((by_name[name].category for name in fired), key=order.index)
    return dict(action="rollback", category=category, triggers=fired,
                reason="%s fired" % ", ".join(fired), **CATEGORY_RESPONSE[category])


class TriggerWatch:
    """Collect and evaluate every ``interval`` s until a trigger fires or ``watch_s`` ends."""

    def __init__(self, source, policy, interval=10.0, watch_s=0.0, clock=time.monotonic, sleep=time.sleep,
                 wall=time.time):
        self.source = source
        self.policy = policy
        self.interval = float(interval)
        self.watch_s = float(watch_s)
        self.clock = clock
        self.sleep = sleep
        self.wall = wall

    def run(self):
        started = self.clock()
        started_wall = self.wall()
        evaluations = 0
        while True:
            tick = self.clock()
            self.source.collect()
            observations = self.source.observe(self.policy)
            evaluations += 1
            answer = verdict(observations)
            elapsed = self.clock() - started
            if answer == "rollback" or elapsed + self.interval > self.watch_s:
                break
            self.sleep(max(0.0, tick + self.interval - self.clock()))
        fired = [o.trigger for o in observations.values() if o.status == FIRED]
        return {
            "verdict": answer,
            "fired": fired,
            "unknown": [o.trigger for o in observations.values() if o.status == UNKNOWN],
            "triggers": {name: o.to_dict() for name, o in observations.items()},
            "recommended_action": recommendation(observations, self.policy),
            "evaluations": evaluations,
            "watched_s": round(self.clock() - started, 2),
            "started_at": _iso(started_wall),
            "fired_at": _iso(self.wall()) if fired else None,
            "source": self.source.name,
            "policy": self.policy.to_dict(),
        }


def _iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
