"""Monitoring stand-ins: Azure Monitor metrics for App Service, and a REAL Prometheus.

Both report the traffic the sandbox apps really served (their data plane
calls the `app_request` hook for every request) and their plans' CPU and
memory gauges (set through the admin API: the sandbox has no real load).

Azure Monitor (ARM, main port):
  GET {site or slot id}/providers/Microsoft.Insights/metrics      Requests, Http2xx, Http4xx, Http5xx
                                                                  (Count, Total), HttpResponseTime (Seconds,
                                                                  Average)
  GET {serverfarm id}/providers/Microsoft.Insights/metrics        CpuPercentage, MemoryPercentage (Percent,
                                                                  Average)
  ?timespan=<start>/<end> (or an ISO duration ending now)&interval=PT1M|PT5M|PT15M|PT30M|PT1H
  &metricnames=A,B&aggregation=Total,Average,Count,Minimum,Maximum&api-version=...
  Grains are aligned to the interval; an empty grain of a Count metric has total 0, of a
  Seconds/Percent metric no value, as Azure Monitor answers. An unknown metric name is
  400 BadRequest naming the valid ones; an unknown site or plan 404 ResourceNotFound.

Prometheus exposition (`/metrics`, HTTPS on its own port), scraped every second by
the real `prometheus` binary (Debian's package) started as a child:
  http_requests_total{resource_group, site, slot, status}          counter
  http_request_duration_seconds_sum / _count{resource_group, site, slot}
  process_cpu_seconds_total{resource_group, site, slot}            the plan's CPU gauge, integrated
  container_memory_working_set_bytes / container_spec_memory_limit_bytes{...}

Admin API (never faulted or logged):
  GET  /_sandbox/monitor                 request counts per app, gauges, Prometheus url and pid
  POST /_sandbox/monitor/requests        {"resource_group", "site", "slot": "production", "count", "status",
                                          "latency_ms", "minutes_ago": 5, "spread_minutes": 5}: synthetic
                                          history, as if the app had served it then
  PUT  /_sandbox/monitor/plans/{rg}/{plan}  {"cpu_percent", "memory_percent", "minutes_ago": 0}
  A sandbox reset forgets all requests and gauges, and deletes every Prometheus series.

Environment: SRE_SANDBOX_PROMETHEUS_URL (http://127.0.0.1:PORT), SRE_SANDBOX_METRICS_URL (the exporter).
"""

import datetime
import os
import re
import threading
import time

from ..arm import RG_PREFIX, ArmError
from ..web import BadJson, HttpsServer, Response
from .prometheus import PrometheusProcess, binary
from .stats import Gauges, RequestLog

WEB = r"/providers/Microsoft\.Web"
METRICS = r"/providers/Microsoft\.Insights/metrics"
SITE_METRICS_PATH = RG_PREFIX + WEB + r"/sites/(?P<site>[^/]+)(?:/slots/(?P<slot>[^/]+))?" + METRICS
PLAN_METRICS_PATH = RG_PREFIX + WEB + r"/serverfarms/(?P<plan>[^/]+)" + METRICS

# name -> (unit, primary aggregation, what a grain is made of)
SITE_METRICS = {
    "Requests": ("Count", "Total", "requests"),
    "Http2xx": ("Count", "Total", "2xx"),
    "Http4xx": ("Count", "Total", "4xx"),
    "Http5xx": ("Count", "Total", "5xx"),
    "HttpResponseTime": ("Seconds", "Average", "latency"),
}
PLAN_METRICS = {
    "CpuPercentage": ("Percent", "Average", "cpu"),
    "MemoryPercentage": ("Percent", "Average", "memory"),
}
AGGREGATIONS = ("average", "count", "maximum", "minimum", "total")
MEMORY_LIMIT_BYTES = 1536 * 1024 * 1024  # a B1-size worker
_DURATION = re.compile(r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?", re.I)


def parse_duration(text):
    match = _DURATION.fullmatch(text or "")
    if not match or not any(match.groupdict().values()):
        return None
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def parse_time(text):
    value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.timestamp()


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class MonitorProvider:
    name = "monitor"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.arm = arm
        self.requests = RequestLog()
        self.gauges = Gauges()
        self.exporter = HttpsServer(sandbox.ssl_context, self._serve_metrics, name="metrics", quiet=True).start()
        state_dir = os.path.dirname(sandbox.ca_path)
        self.prometheus = None
        if os.path.exists(binary()):
            # Started on the sandbox's main thread: the pdeathsig is tied to the starting thread.
            self.prometheus = PrometheusProcess(os.path.join(state_dir, "prometheus"), self.exporter.port,
                                                sandbox.ca_path).start()
        self.dataplane = self
        self._lock = threading.Lock()
        sandbox.hooks["app_request"] = self.record_request
        arm.arm_route("GET", SITE_METRICS_PATH, self._site_metrics)
        arm.arm_route("GET", PLAN_METRICS_PATH, self._plan_metrics)
        add = sandbox.admin.add
        add("GET", r"/_sandbox/monitor", self._admin_state)
        add("POST", r"/_sandbox/monitor/requests", self._admin_requests)
        add("PUT", r"/_sandbox/monitor/plans/(?P<resource_group>[^/]+)/(?P<plan>[^/]+)", self._admin_plan)
        sandbox.on_reset(self._reset)

    # -- what the apps report -------------------------------------------------------------
    def record_request(self, resource_group, site, slot, status, latency_s):
        with self._lock:
            self.requests.record(self._app_key(resource_group, site, slot), status, latency_s)

    @staticmethod
    def _app_key(resource_group, site, slot):
        return (resource_group.lower(), site.lower(), (slot or "production").lower())

    def _appservice(self):
        return next((p for p in self.sandbox.providers if p.name == "appservice"), None)

    def _sites(self):
        provider = self._appservice()
        return list(provider.state.sites.values()) if provider else []

    def _site(self, resource_group, name):
        provider = self._appservice()
        return provider.state.site(resource_group.lower(), name.lower()) if provider else None

    def _plan_of(self, site):
        return (site.resource_group.lower(), str(site.server_farm).lower())

    # -- Azure Monitor ---------------------------------------------------------------------
    def _query(self, request, catalogue):
        names = [n.strip() for n in (request.query.get("metricnames") or "").split(",") if n.strip()]
        names = names or [next(iter(catalogue))]
        by_lower = {n.lower(): n for n in catalogue}
        unknown = [n for n in names if n.lower() not in by_lower]
        if unknown:
            raise ArmError(400, "BadRequest", "Failed to find metric configuration for provider: Microsoft.Web, "
                           f"metric: '{', '.join(unknown)}', Valid metrics: {', '.join(catalogue)}")
        interval = parse_duration(request.query.get("interval") or "PT1M")
        if not interval or interval < 60:
            raise ArmError(400, "BadRequest", f"Invalid interval '{request.query.get('interval')}': use PT1M or longer.")
        end = time.time()
        timespan = request.query.get("timespan") or "PT1H"
        try:
            if "/" in timespan:
                start_text, end_text = timespan.split("/", 1)
                start, end = parse_time(start_text), parse_time(end_text)
            else:
                start = end - (parse_duration(timespan) or 0)
        except ValueError:
            raise ArmError(400, "BadRequest", f"Invalid timespan '{timespan}'.") from None
        if start >= end:
            raise ArmError(400, "BadRequest", f"Invalid timespan '{timespan}': the start is not before the end.")
        requested = [a.strip().lower() for a in (request.query.get("aggregation") or "").split(",") if a.strip()]
        bad = [a for a in requested if a not in AGGREGATIONS]
        if bad:
            raise ArmError(400, "BadRequest", f"Invalid aggregation '{', '.join(bad)}'.")
        first = start - start % interval
        grains = [(t, t + interval) for t in range(int(first), int(end), int(interval))]
        return [by_lower[n.lower()] for n in names], requested, grains, timespan, interval

    def _respond(self, request, catalogue, grain_values, namespace, location):
        names, requested, grains, timespan, interval = self._query(request, catalogue)
        resource_id = request.path.split("/providers/Microsoft.Insights/")[0]
        value = []
        for name in names:
            unit, primary, kind = catalogue[name]
            aggregations = requested or [primary.lower()]
            data = []
            for start, end in grains:
                samples = grain_values(kind, start, end)
                point = {"timeStamp": iso(start)}
                if unit == "Count":
                    total = float(sum(samples))
                    stats = {"total": total, "count": float(len(samples)), "average": total / len(samples) if samples else 0.0,
                             "minimum": float(min(samples)) if samples else 0.0,
                             "maximum": float(max(samples)) if samples else 0.0}
                elif samples:
                    stats = {"total": float(sum(samples)), "count": float(len(samples)),
                             "average": sum(samples) / len(samples), "minimum": min(samples), "maximum": max(samples)}
                else:
                    stats = {}  # no data in the grain: Azure Monitor sends only the time stamp
                point.update({a: stats[a] for a in aggregations if a in stats})
                data.append(point)
            value.append({
                "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}",
                "type": "Microsoft.Insights/metrics",
                "name": {"value": name, "localizedValue": name},
                "unit": unit,
                "timeseries": [{"metadatavalues": [], "data": data}],
                "errorCode": "Success",
            })
        return Response.json({"cost": len(grains) * len(names), "timespan": timespan,
                              "interval": "PT%dM" % (interval // 60), "value": value,
                              "namespace": namespace, "resourceregion": location})

    def _site_metrics(self, request):
        rg = self.arm.resource_group(request.params)
        site = self._site(request.params["resource_group"], request.params["site"])
        slot_name = request.params.get("slot") or "production"
        if site is None or site.slot(slot_name.lower()) is None:
            raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/sites/{request.params['site']}' "
                           f"under resource group '{request.params['resource_group']}' was not found.")
        key = self._app_key(site.resource_group, site.name, slot_name)

        def grain_values(kind, start, end):
            with self._lock:
                events = self.requests.window(key, start, end)
            if kind == "latency":
                return [latency for _at, _status, latency in events]
            if kind == "requests":
                return [1 for _event in events]
            return [1 for _at, status, _latency in events if str(status).startswith(kind[0])]
        return self._respond(request, SITE_METRICS, grain_values, "Microsoft.Web/sites", rg["location"])

    def _plan_metrics(self, request):
        rg = self.arm.resource_group(request.params)
        plan = request.params["plan"].lower()
        if not any(self._plan_of(s) == (request.params["resource_group"].lower(), plan) for s in self._sites()):
            raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.Web/serverFarms/{request.params['plan']}' "
                           f"under resource group '{request.params['resource_group']}' was not found.")
        key = (request.params["resource_group"].lower(), plan)

        def grain_values(kind, start, end):
            # One sample per minute of the grain, as the platform emits them.
            with self._lock:
                return [self.gauges.at(key, t)[0 if kind == "cpu" else 1] for t in range(int(start), int(end), 60)]
        return self._respond(request, PLAN_METRICS, grain_values, "Microsoft.Web/serverFarms", rg["location"])

    # -- Prometheus exposition --------------------------------------------------------------
    def _serve_metrics(self, request):
        if request.path != "/metrics":
            return Response.text("404 Not Found\n", 404)
        now = time.time()
        lines = ["# HELP http_requests_total Requests the app served, by status.",
                 "# TYPE http_requests_total counter"]
        durations, cpu, memory = [], [], []
        with self.sandbox.lock, self._lock:
            for site in self._sites():
                for slot in site.slots.values():
                    key = self._app_key(site.resource_group, site.name, slot.name)
                    labels = f'resource_group="{site.resource_group}",site="{site.name}",slot="{slot.name}"'
                    total = self.requests.totals.get(key)
                    for status, count in sorted((total or {}).get("by_status", {}).items()):
                        lines.append(f'http_requests_total{{{labels},status="{status}"}} {count}')
                    if total:
                        durations.append(f"http_request_duration_seconds_sum{{{labels}}} {total['latency_sum']:.6f}")
                        durations.append(f"http_request_duration_seconds_count{{{labels}}} {total['count']}")
                    plan = self._plan_of(site)
                    cpu.append(f"process_cpu_seconds_total{{{labels}}} {self.gauges.cpu_seconds(plan, now):.3f}")
                    used = self.gauges.at(plan, now)[1] / 100.0 * MEMORY_LIMIT_BYTES
                    memory.append(f"container_memory_working_set_bytes{{{labels}}} {used:.0f}")
                    memory.append(f"container_spec_memory_limit_bytes{{{labels}}} {MEMORY_LIMIT_BYTES}")
        lines += ["# HELP http_request_duration_seconds Time the app took to answer.",
                  "# TYPE http_request_duration_seconds summary"] + durations
        lines += ["# TYPE process_cpu_seconds_total counter"] + cpu
        lines += ["# TYPE container_memory_working_set_bytes gauge",
                  "# TYPE container_spec_memory_limit_bytes gauge"] + memory
        return Response(200, ("\n".join(lines) + "\n").encode(), content_type="text/plain; version=0.0.4")

    # -- admin -----------------------------------------------------------------------------
    def _admin_state(self, request):
        with self._lock:
            apps = {"/".join(k): {"requests": v["count"], "by_status": dict(v["by_status"])}
                    for k, v in self.requests.totals.items()}
            plans = {"/".join(k): [{"since": iso(s), "cpu_percent": c, "memory_percent": m} for s, c, m in timeline]
                     for k, timeline in self.gauges.timelines.items()}
        return Response.json({"apps": apps, "plans": plans, "metrics_url": self.metrics_url,
                              "prometheus": {"url": self.prometheus.url, "pid": self.prometheus.pid,
                                             "running": self.prometheus.running()} if self.prometheus else None})

    def _admin_requests(self, request):
        try:
            body = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        problem = _check(body, {"resource_group": str, "site": str, "count": int, "status": int},
                         {"slot": str, "latency_ms": (int, float), "minutes_ago": (int, float),
                          "spread_minutes": (int, float)})
        if problem:
            return Response.json({"error": problem}, 400)
        minutes_ago = float(body.get("minutes_ago", 5))
        spread = float(body.get("spread_minutes", minutes_ago))
        start = time.time() - minutes_ago * 60
        with self._lock:
            self.requests.backfill(self._app_key(body["resource_group"], body["site"], body.get("slot")),
                                   body["count"], body["status"], float(body.get("latency_ms", 50)) / 1000.0,
                                   start, start + spread * 60)
        return self._admin_state(request)

    def _admin_plan(self, request):
        try:
            body = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        problem = _check(body, {}, {"cpu_percent": (int, float), "memory_percent": (int, float),
                                    "minutes_ago": (int, float)})
        if problem:
            return Response.json({"error": problem}, 400)
        since = time.time() - float(body.get("minutes_ago", 0)) * 60
        with self._lock:
            self.gauges.set((request.params["resource_group"].lower(), request.params["plan"].lower()),
                            body.get("cpu_percent"), body.get("memory_percent"), since)
        return self._admin_state(request)

    def _reset(self):
        with self._lock:
            self.requests.clear()
            self.gauges.clear()
        if self.prometheus:
            self.prometheus.delete_all_series()

    # -- provider interface ------------------------------------------------------------------
    @property
    def metrics_url(self):
        return f"https://127.0.0.1:{self.exporter.port}/metrics"

    def ports(self):
        ports = {"metrics": self.exporter.port}
        if self.prometheus:
            ports["prometheus"] = self.prometheus.port
        return ports

    def snapshot(self):
        with self._lock:
            return {"apps": {"/".join(k): v["count"] for k, v in self.requests.totals.items()},
                    "prometheus": self.prometheus.url if self.prometheus else None}

    def env(self):
        env = {"SRE_SANDBOX_METRICS_URL": self.metrics_url}
        if self.prometheus:
            env["SRE_SANDBOX_PROMETHEUS_URL"] = self.prometheus.url
        return env

    def stop(self):
        if self.prometheus:
            self.prometheus.stop()
        self.exporter.stop()


def _check(body, required, optional):
    if not isinstance(body, dict):
        return "expected a JSON object"
    allowed = dict(required, **optional)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
    missing = sorted(set(required) - set(body))
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    for name, kind in allowed.items():
        if name in body and (not isinstance(body[name], kind) or isinstance(body[name], bool)):
            return f"{name} has the wrong type"
    return None
