# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP health probing for rollback decisions.

Plain Python, no AnsibleModule: the ``sre.rollback.health_check`` module is a
thin wrapper around :class:`HealthProbe`, and the unit tests drive this class
directly against a local HTTP server.

A probe sends ``samples`` requests to every URL, ``interval`` seconds apart,
optionally after a warm-up phase that waits for the first success (the seconds
right after a slot swap). Every sample is a success or a failure with a short
reason. The per-URL statistics are then compared with thresholds, and the
verdict lists every threshold with the observed value, the limit and whether it
passed, so a person can see *why* a target was judged unhealthy.

The whole run is bounded by ``timeout``: no request, wait or warm-up goes past
that deadline, even if a server accepts the connection and then stalls.
"""

from __future__ import annotations

import json
import math
import os
import ssl
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from ansible_collections.sre.rollback.plugins.module_utils.trust import ssl_verify

try:
    import httpx
except ImportError:  # pragma: no cover - reported by the module via missing_required_lib
    httpx = None
    HTTPX_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None


DEFAULT_EXPECTED_STATUS = (200,)
DEFAULT_MAX_CONSECUTIVE_FAILURES = 3
DEFAULT_MAX_ERROR_RATE = 0.05
# Only the last few failure reasons are kept per URL, to bound the output.
RECENT_FAILURES_KEPT = 5
# Distinct versions remembered per URL (a flapping deployment shows two).
VERSIONS_KEPT = 10
# Health bodies are small; a larger body is cut off and reported.
MAX_BODY_BYTES = 1024 * 1024
# Extra wait for the HTTP client to report its own timeout before the
# watchdog abandons a request (keeps the clearer client error message).
_WATCHDOG_GRACE_S = 0.1
_MAX_TEXT = 120


class HealthProbeError(ValueError):
    """Invalid probe arguments. ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


# --------------------------------------------------------------------------
# Result data
# --------------------------------------------------------------------------


@dataclass
class Thresholds:
    """Limits a URL must stay within to be called healthy.

    ``max_consecutive_failures`` is the runbook trigger: a run of that many
    failed samples in a row makes the URL unhealthy (mvp011: 3 consecutive
    failures trigger rollback). ``max_error_rate`` is the highest tolerated
    fraction of failed samples (0..1). The latency limits (milliseconds) are
    checked only when set, over the samples that got an HTTP response.
    """

    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    max_latency_avg_ms: float | None = None
    max_latency_p95_ms: float | None = None


@dataclass
class Check:
    """One threshold compared with its observed value."""

    name: str
    observed: Any
    limit: Any
    rule: str
    passed: bool
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["url"] is None:
            del data["url"]
        return data

    def describe(self) -> str:
        return f"{self.name} {_fmt(self.observed)} (must be {self.rule})"


@dataclass
class Verdict:
    healthy: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "checks": [c.to_dict() for c in self.checks],
            "failed_checks": [c.name for c in self.failed],
        }


@dataclass
class SampleFailure:
    """Why one sample failed (``phase`` is ``warmup`` or ``sample``)."""

    phase: str
    index: int
    reason: str
    status: int | None = None


@dataclass
class Outcome:
    """What one HTTP request produced."""

    ok: bool
    reason: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    version: str | None = None


@dataclass
class WarmupResult:
    enabled: bool = False
    attempts: int = 0
    ready: bool | None = None
    seconds: float = 0.0


@dataclass
class UrlResult:
    url: str
    samples_requested: int
    samples_taken: int = 0
    successes: int = 0
    failures: int = 0
    consecutive_failures_max: int = 0
    consecutive_failures_trailing: int = 0
    error_rate: float | None = None
    latency_avg_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_max_ms: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    versions: list[str] = field(default_factory=list)
    recent_failures: list[SampleFailure] = field(default_factory=list)
    warmup: WarmupResult = field(default_factory=WarmupResult)
    verdict: Verdict | None = None
    # Internal accumulators, not reported.
    _latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def healthy(self) -> bool:
        return bool(self.verdict and self.verdict.healthy)

    def record(self, phase: str, index: int, outcome: Outcome) -> None:
        """Account for one request (warm-up attempts only update last_*/versions)."""
        if outcome.status is not None:
            self.last_status = outcome.status
        if outcome.version is not None and outcome.version not in self.versions:
            if len(self.versions) < VERSIONS_KEPT:
                self.versions.append(outcome.version)
        if not outcome.ok:
            self.last_error = outcome.reason
            self.recent_failures.append(
                SampleFailure(phase=phase, index=index, reason=outcome.reason or "failed", status=outcome.status)
            )
            del self.recent_failures[:-RECENT_FAILURES_KEPT]
        if phase != "sample":
            return
        self.samples_taken += 1
        if outcome.latency_ms is not None:
            self._latencies.append(outcome.latency_ms)
        if outcome.ok:
            self.successes += 1
            self.consecutive_failures_trailing = 0
        else:
            self.failures += 1
            self.consecutive_failures_trailing += 1
            self.consecutive_failures_max = max(self.consecutive_failures_max, self.consecutive_failures_trailing)

    def finish(self, thresholds: Thresholds) -> None:
        if self.samples_taken:
            self.error_rate = round(self.failures / self.samples_taken, 4)
        if self._latencies:
            self.latency_avg_ms = round(sum(self._latencies) / len(self._latencies), 1)
            self.latency_p95_ms = round(percentile(self._latencies, 95), 1)
            self.latency_max_ms = round(max(self._latencies), 1)
        self.verdict = judge(self, thresholds)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        data["healthy"] = self.healthy
        data["verdict"] = self.verdict.to_dict() if self.verdict else None
        return data


@dataclass
class ProbeResult:
    healthy: bool
    urls: list[UrlResult]
    verdict: Verdict
    duration_s: float
    deadline_exceeded: bool
    samples_taken: int = 0
    successes: int = 0
    failures: int = 0
    error_rate: float | None = None

    def summary(self) -> str:
        """One line per unhealthy URL, naming the failed thresholds and the evidence."""
        lines = []
        for u in self.urls:
            if u.healthy:
                continue
            failed = ", ".join(c.describe() for c in u.verdict.failed) if u.verdict else "not judged"
            evidence = f"{u.successes}/{u.samples_taken} samples ok"
            if u.last_status is not None:
                evidence += f", last status {u.last_status}"
            if u.last_error:
                evidence += f", last error: {u.last_error}"
            if u.warmup.enabled and not u.warmup.ready:
                evidence += f", no success during {u.warmup.attempts} warm-up attempt(s)"
            lines.append(f"{u.url}: {failed} [{evidence}]")
        if self.deadline_exceeded:
            lines.append(f"overall deadline reached after {self.duration_s:.1f}s before all samples were taken")
        return "; ".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "urls": [u.to_dict() for u in self.urls],
            "verdict": {
                "healthy": self.verdict.healthy,
                "failed_checks": [f"{c.url} {c.name}" for c in self.verdict.failed],
                "summary": self.summary(),
                "checks": [c.to_dict() for c in self.verdict.checks],
            },
            "duration_s": self.duration_s,
            "deadline_exceeded": self.deadline_exceeded,
            "samples_taken": self.samples_taken,
            "successes": self.successes,
            "failures": self.failures,
            "error_rate": self.error_rate,
        }


# --------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 3 samples is the largest one)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


def judge(result: UrlResult, t: Thresholds) -> Verdict:
    checks = [
        Check(
            name="samples_taken",
            observed=result.samples_taken,
            limit=result.samples_requested,
            rule=f">= {result.samples_requested}",
            passed=result.samples_taken >= result.samples_requested,
        ),
        Check(
            name="consecutive_failures",
            observed=result.consecutive_failures_max,
            limit=t.max_consecutive_failures,
            rule=f"< {t.max_consecutive_failures}",
            passed=result.consecutive_failures_max < t.max_consecutive_failures,
        ),
        Check(
            name="error_rate",
            observed=result.error_rate,
            limit=t.max_error_rate,
            rule=f"<= {t.max_error_rate}",
            passed=result.error_rate is not None and result.error_rate <= t.max_error_rate,
        ),
    ]
    for name, observed, limit in (
        ("latency_avg_ms", result.latency_avg_ms, t.max_latency_avg_ms),
        ("latency_p95_ms", result.latency_p95_ms, t.max_latency_p95_ms),
    ):
        if limit is None:
            continue
        checks.append(
            Check(
                name=name,
                observed=observed,
                limit=limit,
                rule=f"<= {limit}",
                passed=observed is not None and observed <= limit,
            )
        )
    return Verdict(healthy=all(c.passed for c in checks), checks=checks)


_MISSING = object()


def lookup_path(data: Any, path: str) -> Any:
    """Follow a dotted path (``status.db``, ``checks.0.status``) into JSON data.

    A key containing a literal dot is found too (``{"status.db": ...}``).
    Returns ``_MISSING`` when the path does not exist.
    """
    if isinstance(data, dict) and path in data:
        return data[path]
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def values_match(actual: Any, expected: Any) -> bool:
    """Equality, lenient only about scalar spelling (``200`` vs ``"200"``, ``true`` vs ``"true"``)."""
    if actual == expected and type(actual) is type(expected):
        return True
    if isinstance(actual, (dict, list)) or isinstance(expected, (dict, list)):
        return actual == expected
    if isinstance(actual, bool) or isinstance(expected, bool):
        return _scalar_text(actual).lower() == _scalar_text(expected).lower()
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        return actual == expected
    return _scalar_text(actual) == _scalar_text(expected)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_exception(exc: BaseException, budget: float) -> str:
    """A short, clear reason for a failed request."""
    text = str(exc) or type(exc).__name__
    low = text.lower()
    chain = [exc]
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if httpx is not None:
        if isinstance(exc, httpx.ConnectTimeout):
            return f"connect timeout after {budget:g}s"
        if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)):
            return f"timeout: no response within {budget:g}s"
        if isinstance(exc, httpx.TimeoutException):
            return f"timeout after {budget:g}s"
        if isinstance(exc, httpx.TooManyRedirects):
            return "too many redirects"
        if isinstance(exc, httpx.UnsupportedProtocol):
            return f"unsupported URL: {_short(text)}"
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "certificate verify failed" in low:
        detail = next((getattr(e, "verify_message", None) for e in chain if getattr(e, "verify_message", None)), None)
        return f"TLS error: certificate verify failed ({detail or _short(text)})"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "ssl" in low or "tls" in low:
        return f"TLS error: {_short(text)}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in low or "errno 111" in low:
        return "connection refused"
    if (
        "name or service not known" in low
        or "nodename nor servname" in low
        or "temporary failure in name resolution" in low
        or "getaddrinfo failed" in low
        or "no address associated" in low
    ):
        return "DNS lookup failed"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "connection reset" in low:
        return "connection reset by server"
    if "server disconnected" in low or "without sending" in low or "remoteprotocolerror" in low:
        return "server closed the connection without a complete response"
    if httpx is not None and isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {_short(text)}"
    if httpx is not None and isinstance(exc, httpx.ConnectError):
        return f"connection failed: {_short(text)}"
    return f"{type(exc).__name__}: {_short(text)}"


def validate_url(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return f"url {url!r} is not a non-empty string"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"url {url!r} must start with http:// or https://"
    if not parts.hostname:
        return f"url {url!r} has no host name"
    return None


# --------------------------------------------------------------------------
# The probe
# --------------------------------------------------------------------------


class HealthProbe:
    """Probe HTTP health endpoints and judge them against thresholds.

    All arguments are validated in the constructor; every problem is reported
    at once in a :class:`HealthProbeError` before any request is sent.
    """

    def __init__(
        self,
        urls: Sequence[str] | str,
        *,
        samples: int = 3,
        interval: float = 1.0,
        request_timeout: float = 5.0,
        timeout: float = 60.0,
        warmup_timeout: float = 0.0,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        expected_status: Sequence[int] | None = None,
        body_match: Mapping[str, Any] | None = None,
        expected_version: str | None = None,
        version_field: str | None = "version",
        version_header: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        follow_redirects: bool = False,
        thresholds: Thresholds | None = None,
        transport: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.urls = [urls] if isinstance(urls, str) else list(urls or [])
        self.samples = samples
        self.interval = float(interval)
        self.request_timeout = float(request_timeout)
        self.timeout = float(timeout)
        self.warmup_timeout = float(warmup_timeout or 0.0)
        self.method = (method or "GET").upper()
        self.headers = dict(headers or {})
        self.expected_status = list(expected_status) if expected_status else list(DEFAULT_EXPECTED_STATUS)
        self.body_match = dict(body_match or {})
        self.expected_version = None if expected_version is None else str(expected_version)
        self.version_field = version_field or None
        self.version_header = version_header or None
        self.verify = verify
        self.follow_redirects = follow_redirects
        self.thresholds = thresholds or Thresholds()
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        errors = self.validate()
        if errors:
            raise HealthProbeError(errors)

    # -- validation ---------------------------------------------------------

    def validate(self) -> list[str]:
        errors: list[str] = []
        if not self.urls:
            errors.append("at least one url is required")
        for url in self.urls:
            problem = validate_url(url)
            if problem:
                errors.append(problem)
        if not isinstance(self.samples, int) or isinstance(self.samples, bool) or self.samples < 1:
            errors.append(f"samples must be an integer >= 1, got {self.samples!r}")
        if math.isnan(self.interval) or self.interval < 0:
            errors.append(f"interval must be >= 0 seconds, got {self.interval:g}")
        if math.isnan(self.request_timeout) or self.request_timeout <= 0:
            errors.append(f"request_timeout must be > 0 seconds, got {self.request_timeout:g}")
        if math.isnan(self.timeout) or self.timeout <= 0:
            errors.append(f"timeout must be > 0 seconds, got {self.timeout:g}")
        if math.isnan(self.warmup_timeout) or self.warmup_timeout < 0:
            errors.append(f"warmup_timeout must be >= 0 seconds, got {self.warmup_timeout:g}")
        if self.method not in ("GET", "HEAD"):
            errors.append(f"method must be GET or HEAD, got {self.method!r}")
        for code in self.expected_status:
            if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599:
                errors.append(f"expected_status entries must be HTTP status codes 100-599, got {code!r}")
        if self.method == "HEAD" and self.body_match:
            errors.append("body_match needs method GET (a HEAD response has no body)")
        if self.method == "HEAD" and self.expected_version is not None and not self.version_header:
            errors.append("expected_version with method HEAD needs version_header (a HEAD response has no body)")
        if self.expected_version is not None and not (self.version_field or self.version_header):
            errors.append("expected_version needs version_field or version_header to read the version from")
        t = self.thresholds
        if not isinstance(t.max_consecutive_failures, int) or t.max_consecutive_failures < 1:
            errors.append(f"max_consecutive_failures must be >= 1, got {t.max_consecutive_failures!r}")
        if not (0.0 <= t.max_error_rate <= 1.0):
            errors.append(f"max_error_rate must be between 0 and 1 (0.05 = 5%), got {t.max_error_rate:g}")
        for name in ("max_latency_avg_ms", "max_latency_p95_ms"):
            value = getattr(t, name)
            if value is not None and (math.isnan(value) or value <= 0):
                errors.append(f"{name} must be > 0 milliseconds, got {value:g}")
        if isinstance(self.verify, str) and not os.path.exists(self.verify):
            errors.append(f"CA bundle {self.verify!r} does not exist")
        if not errors and self.samples > 1 and (self.samples - 1) * self.interval >= self.timeout:
            errors.append(
                f"timeout {self.timeout:g}s cannot fit {self.samples} samples {self.interval:g}s apart; "
                "raise timeout or lower samples/interval"
            )
        return errors

    # -- running ------------------------------------------------------------

    def run(self) -> ProbeResult:
        if httpx is None:  # pragma: no cover
            raise RuntimeError("the httpx Python library is required")
        start = self._clock()
        deadline = start + self.timeout
        results = [UrlResult(url=u, samples_requested=self.samples) for u in self.urls]
        deadline_exceeded = False
        client = httpx.Client(
            verify=ssl_verify(self.verify),
            follow_redirects=self.follow_redirects,
            headers=self.headers,
            transport=self._transport,
        )
        try:
            if self.warmup_timeout > 0:
                deadline_exceeded = self._warm_up(client, results, start, deadline)
            if not deadline_exceeded:
                deadline_exceeded = self._sample(client, results, deadline)
        finally:
            client.close()
        for r in results:
            r.finish(self.thresholds)
        return self._summarise(results, round(self._clock() - start, 3), deadline_exceeded)

    def _warm_up(self, client: Any, results: list[UrlResult], start: float, deadline: float) -> bool:
        """Probe each URL until its first success or the warm-up deadline. True if the overall deadline hit."""
        warm_deadline = min(start + self.warmup_timeout, deadline)
        pending = list(results)
        for r in pending:
            r.warmup.enabled = True
            r.warmup.ready = False
        attempt = 0
        while pending:
            round_start = self._clock()
            for r in list(pending):
                budget = min(self.request_timeout, warm_deadline - self._clock())
                if budget <= 0:
                    break
                attempt += 1
                r.warmup.attempts += 1
                outcome = self._probe(client, r.url, budget)
                r.record("warmup", r.warmup.attempts, outcome)
                if outcome.ok:
                    r.warmup.ready = True
                    r.warmup.seconds = round(self._clock() - start, 3)
                    pending.remove(r)
            if not pending:
                break
            next_start = round_start + self.interval
            if next_start >= warm_deadline or self._clock() >= warm_deadline:
                break
            self._wait_until(next_start)
        for r in pending:
            r.warmup.seconds = round(self._clock() - start, 3)
        return self._clock() >= deadline

    def _sample(self, client: Any, results: list[UrlResult], deadline: float) -> bool:
        """Take the counted samples, round-robin over URLs. True if the deadline cut the run short."""
        for index in range(1, self.samples + 1):
            round_start = self._clock()
            for r in results:
                budget = min(self.request_timeout, deadline - self._clock())
                if budget <= 0:
                    return True
                r.record("sample", index, self._probe(client, r.url, budget))
            if index == self.samples:
                break
            next_start = round_start + self.interval
            if next_start >= deadline:
                return True
            self._wait_until(next_start)
        return False

    def _wait_until(self, when: float) -> None:
        remaining = when - self._clock()
        if remaining > 0:
            self._sleep(remaining)

    def _probe(self, client: Any, url: str, budget: float) -> Outcome:
        """One request, hard-bounded by ``budget`` seconds even if the server trickles bytes.

        The HTTP client's own timeouts normally fire first (clearer messages);
        a watchdog thread is the backstop for a server that keeps a connection
        alive by sending a byte now and then.
        """
        box: dict[str, Outcome] = {}

        def worker() -> None:
            try:
                box["outcome"] = self._request(client, url, budget)
            except Exception as exc:  # noqa: BLE001 - every failure is a failed sample
                box["outcome"] = Outcome(ok=False, reason=describe_exception(exc, budget))

        thread = threading.Thread(target=worker, name="sre-rollback-health-probe", daemon=True)
        thread.start()
        thread.join(budget + _WATCHDOG_GRACE_S)
        outcome = box.get("outcome")
        if outcome is None:
            # Still running: abandon it (daemon thread, its own timeouts end it).
            outcome = Outcome(ok=False, reason=f"timeout: no complete response within {budget:g}s")
        return outcome

    def _request(self, client: Any, url: str, budget: float) -> Outcome:
        started = time.monotonic()
        request_deadline = started + budget
        with client.stream(self.method, url, timeout=httpx.Timeout(budget)) as response:
            body = bytearray()
            truncated = False
            if self.method != "HEAD":
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_BODY_BYTES:
                        truncated = True
                        break
                    if time.monotonic() > request_deadline:
                        return Outcome(
                            ok=False,
                            reason=f"timeout: body not complete within {budget:g}s",
                            status=response.status_code,
                        )
            latency_ms = round((time.monotonic() - started) * 1000, 1)
            return self._evaluate(response, bytes(body), truncated, latency_ms)

    def _evaluate(self, response: Any, body: bytes, truncated: bool, latency_ms: float) -> Outcome:
        status = response.status_code
        outcome = Outcome(ok=True, status=status, latency_ms=latency_ms)
        problems: list[str] = []
        if status not in self.expected_status:
            expected = ", ".join(str(c) for c in self.expected_status)
            problems.append(f"HTTP {status} {response.reason_phrase or ''}".rstrip() + f" (expected {expected})")

        data: Any = _MISSING
        json_problem: str | None = None
        needs_json = bool(self.body_match) or (
            self.version_field is not None and not self.version_header and self.method != "HEAD"
        )
        if needs_json:
            if truncated:
                json_problem = f"body larger than {MAX_BODY_BYTES} bytes"
            else:
                try:
                    data = json.loads(body.decode(response.encoding or "utf-8", errors="replace")) if body else _MISSING
                    if data is _MISSING:
                        json_problem = "body is empty, expected JSON"
                except ValueError:
                    json_problem = f"body is not JSON: {_short(body.decode('utf-8', errors='replace'))!r}"

        if self.version_header:
            outcome.version = response.headers.get(self.version_header)
        elif self.version_field and data is not _MISSING:
            found = lookup_path(data, self.version_field)
            if found is not _MISSING and found is not None and not isinstance(found, (dict, list)):
                outcome.version = str(found)

        if self.body_match:
            if json_problem:
                problems.append(json_problem)
            else:
                for path, expected in self.body_match.items():
                    actual = lookup_path(data, path)
                    if actual is _MISSING:
                        problems.append(f"body field {path!r} missing (expected {_short(expected)})")
                    elif not values_match(actual, expected):
                        problems.append(f"body field {path!r} is {_short(actual)}, expected {_short(expected)}")

        if self.expected_version is not None:
            where = f"header {self.version_header!r}" if self.version_header else f"body field {self.version_field!r}"
            if outcome.version is None:
                if json_problem and not self.version_header and not self.body_match:
                    problems.append(json_problem)
                problems.append(f"version not found in {where} (expected {self.expected_version})")
            elif outcome.version != self.expected_version:
                problems.append(f"version {outcome.version} in {where}, expected {self.expected_version}")

        if problems:
            outcome.ok = False
            outcome.reason = "; ".join(problems)
        return outcome

    def _summarise(self, results: list[UrlResult], duration: float, deadline_exceeded: bool) -> ProbeResult:
        checks: list[Check] = []
        for r in results:
            for c in r.verdict.checks if r.verdict else []:
                checks.append(Check(name=c.name, observed=c.observed, limit=c.limit, rule=c.rule,
                                    passed=c.passed, url=r.url))
        healthy = all(r.healthy for r in results)
        taken = sum(r.samples_taken for r in results)
        fails = sum(r.failures for r in results)
        return ProbeResult(
            healthy=healthy,
            urls=results,
            verdict=Verdict(healthy=healthy, checks=checks),
            duration_s=duration,
            deadline_exceeded=deadline_exceeded,
            samples_taken=taken,
            successes=taken - fails,
            failures=fails,
            error_rate=round(fails / taken, 4) if taken else None,
        )
