# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for module_utils/health.py against a real local HTTP server."""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.health import (
    HealthProbe,
    HealthProbeError,
    _MISSING,
    Thresholds,
    lookup_path,
    percentile,
    values_match,
)
from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle

HEALTHY_BODY = {"health": "healthy", "version": "1.2.3", "status": {"db": "up"}, "checks": [{"status": "pass"}]}


class _Handler(BaseHTTPRequestHandler):
    """Routes:

    /healthy                 200 + HEALTHY_BODY, X-App-Version: 1.2.3
    /degraded                200 + {"health": "degraded"}
    /text                    200 + plain text
    /status/<code>           that status
    /slow/<ms>               sleeps, then like /healthy
    /version/<v>             200 + {"health": "healthy", "version": v}, X-App-Version: v
    /pattern/<key>?p=SFFS    per-key counter; S = healthy 200, F = 500; the last letter repeats
    /auth                    200 with Authorization "Bearer s3cret", else 401
    /close                   closes the connection without answering
    /hang                    never answers (until the server stops)
    /trickle                 sends a header byte every 0.2 s, forever
    """

    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code, body=None, headers=None):
        payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts = urlsplit(self.path)
        path = parts.path.strip("/").split("/")
        query = parse_qs(parts.query)
        name = path[0]
        self.server.hits[self.path] += 1
        if name == "healthy":
            self._send(200, HEALTHY_BODY, {"X-App-Version": "1.2.3"})
        elif name == "degraded":
            self._send(200, {"health": "degraded", "version": "1.2.3"})
        elif name == "text":
            self._send(200, b"OK")
        elif name == "status":
            self._send(int(path[1]), {"error": "boom"})
        elif name == "slow":
            time.sleep(int(path[1]) / 1000.0)
            self._send(200, HEALTHY_BODY)
        elif name == "version":
            self._send(200, {"health": "healthy", "version": path[1]}, {"X-App-Version": path[1]})
        elif name == "pattern":
            pattern = query["p"][0]
            with self.server.lock:
                n = self.server.counters[path[1]]
                self.server.counters[path[1]] += 1
            letter = pattern[min(n, len(pattern) - 1)]
            if letter == "S":
                self._send(200, HEALTHY_BODY)
            else:
                self._send(500, {"health": "unhealthy"})
        elif name == "auth":
            if self.headers.get("Authorization") == "Bearer s3cret":
                self._send(200, HEALTHY_BODY)
            else:
                self._send(401, {"error": "unauthorized"})
        elif name == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif name == "hang":
            self.server.stopping.wait(30)
            self.close_connection = True
        elif name == "trickle":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self.wfile.flush()
            while not self.server.stopping.wait(0.2):
                try:
                    self.wfile.write(b"X")
                    self.wfile.flush()
                except OSError:
                    break
            self.close_connection = True
        else:
            self._send(404, {"error": "no route"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.counters = collections.Counter()
        self.hits = collections.Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def handle_error(self, request, client_address):
        pass  # /close and /trickle end connections abruptly on purpose


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.stopping.set()
    srv.shutdown()
    srv.server_close()


_key = iter(range(10**6))


def pattern_url(server, pattern):
    """A fresh counter per call, so tests do not share state."""
    return f"{server.base}/pattern/k{next(_key)}?p={pattern}"


def probe(urls, **kwargs):
    kwargs.setdefault("interval", 0.01)
    kwargs.setdefault("request_timeout", 2)
    kwargs.setdefault("timeout", 10)
    return HealthProbe(urls, **kwargs).run()


def failed_names(result):
    return sorted(c["name"] for c in result.to_dict()["urls"][0]["verdict"]["checks"] if not c["passed"])


# --------------------------------------------------------------------------
# Healthy, thresholds
# --------------------------------------------------------------------------


def test_all_healthy(server):
    result = probe(
        f"{server.base}/healthy",
        samples=3,
        body_match={"health": "healthy"},
        expected_version="1.2.3",
    )
    data = result.to_dict()
    url = data["urls"][0]
    assert data["healthy"] is True
    assert data["verdict"]["failed_checks"] == []
    assert data["verdict"]["summary"] == ""
    assert (url["samples_taken"], url["successes"], url["failures"]) == (3, 3, 0)
    assert url["error_rate"] == 0.0
    assert url["last_status"] == 200
    assert url["last_error"] is None
    assert url["versions"] == ["1.2.3"]
    assert 0 < url["latency_avg_ms"] <= url["latency_p95_ms"] <= url["latency_max_ms"] < 2000
    assert {c["name"] for c in url["verdict"]["checks"]} == {"samples_taken", "consecutive_failures", "error_rate"}
    assert json.loads(json.dumps(data)) == data  # plain data, JSON-serialisable


def test_three_consecutive_failures_make_unhealthy(server):
    result = probe(pattern_url(server, "SFFF"), samples=4, thresholds=Thresholds(max_error_rate=1.0))
    url = result.urls[0]
    assert result.healthy is False
    assert (url.consecutive_failures_max, url.consecutive_failures_trailing) == (3, 3)
    assert failed_names(result) == ["consecutive_failures"]
    check = next(c for c in url.verdict.checks if c.name == "consecutive_failures")
    assert (check.observed, check.limit, check.passed) == (3, 3, False)
    assert "consecutive_failures 3 (must be < 3)" in result.summary()
    assert "HTTP 500" in url.last_error


def test_two_consecutive_failures_are_tolerated(server):
    result = probe(pattern_url(server, "FFSFFS"), samples=6, thresholds=Thresholds(max_error_rate=1.0))
    url = result.urls[0]
    assert (url.consecutive_failures_max, url.consecutive_failures_trailing) == (2, 0)
    assert result.healthy is True


def test_error_rate_threshold(server):
    unhealthy = probe(pattern_url(server, "SFSFSF"), samples=6, thresholds=Thresholds(max_error_rate=0.2))
    assert unhealthy.urls[0].error_rate == 0.5
    assert unhealthy.healthy is False
    assert failed_names(unhealthy) == ["error_rate"]
    assert "error_rate 0.5 (must be <= 0.2)" in unhealthy.summary()

    tolerated = probe(pattern_url(server, "SFSFSF"), samples=6, thresholds=Thresholds(max_error_rate=0.5))
    assert tolerated.healthy is True
    assert tolerated.error_rate == 0.5


def test_default_error_rate_is_five_percent(server):
    result = probe(pattern_url(server, "F" + "S" * 19), samples=20)  # 1/20 = 5 % passes
    assert result.healthy is True
    result = probe(pattern_url(server, "FS" + "S" * 17 + "F"), samples=20)  # 2/20 = 10 % fails
    assert result.healthy is False
    assert failed_names(result) == ["error_rate"]


def test_latency_thresholds(server):
    slow = f"{server.base}/slow/300"
    result = probe(slow, samples=2, thresholds=Thresholds(max_latency_avg_ms=100, max_latency_p95_ms=150))
    url = result.urls[0]
    assert url.successes == 2  # the samples themselves succeeded
    assert url.latency_avg_ms >= 300
    assert result.healthy is False
    assert failed_names(result) == ["latency_avg_ms", "latency_p95_ms"]

    result = probe(slow, samples=2, thresholds=Thresholds(max_latency_avg_ms=2000, max_latency_p95_ms=2000))
    assert result.healthy is True


# --------------------------------------------------------------------------
# Body and version
# --------------------------------------------------------------------------


def test_body_match_dotted_path(server):
    ok = probe(f"{server.base}/healthy", samples=1, body_match={"status.db": "up", "checks.0.status": "pass"})
    assert ok.healthy is True

    wrong = probe(f"{server.base}/healthy", samples=1, body_match={"status.db": "down"})
    assert wrong.healthy is False
    assert wrong.urls[0].last_error == "body field 'status.db' is up, expected down"

    missing = probe(f"{server.base}/healthy", samples=1, body_match={"status.cache": "up"})
    assert "body field 'status.cache' missing" in missing.urls[0].last_error


def test_body_match_degraded_and_not_json(server):
    degraded = probe(f"{server.base}/degraded", samples=1, body_match={"health": "healthy"})
    assert degraded.healthy is False
    assert degraded.urls[0].last_status == 200
    assert "'health' is degraded" in degraded.urls[0].last_error

    text = probe(f"{server.base}/text", samples=1, body_match={"health": "healthy"})
    assert text.healthy is False
    assert "body is not JSON" in text.urls[0].last_error


def test_version_mismatch_body_and_header(server):
    result = probe(f"{server.base}/version/2.0.0", samples=2, expected_version="1.2.3")
    url = result.urls[0]
    assert result.healthy is False
    assert url.failures == 2
    assert url.versions == ["2.0.0"]
    assert url.last_error == "version 2.0.0 in body field 'version', expected 1.2.3"

    by_header = probe(
        f"{server.base}/version/1.2.3", samples=1, method="HEAD", expected_version="1.2.3",
        version_header="X-App-Version",
    )
    assert by_header.healthy is True
    assert by_header.urls[0].versions == ["1.2.3"]

    header_mismatch = probe(
        f"{server.base}/version/2.0.0", samples=1, expected_version="1.2.3", version_header="X-App-Version"
    )
    assert "version 2.0.0 in header 'X-App-Version'" in header_mismatch.urls[0].last_error


def test_unexpected_status_and_expected_status_list(server):
    result = probe(f"{server.base}/status/503", samples=1)
    assert result.urls[0].last_status == 503
    assert result.urls[0].last_error.startswith("HTTP 503 Service Unavailable (expected 200)")
    assert probe(f"{server.base}/status/204", samples=1, expected_status=[200, 204]).healthy is True


def test_headers_are_sent_and_never_reported(server):
    assert probe(f"{server.base}/auth", samples=1).healthy is False
    result = probe(f"{server.base}/auth", samples=1, headers={"Authorization": "Bearer s3cret"})
    assert result.healthy is True
    assert "s3cret" not in json.dumps(result.to_dict())


def test_multiple_urls_summary_names_only_the_bad_one(server):
    good, bad = f"{server.base}/healthy", f"{server.base}/status/500"
    result = probe([good, bad], samples=3)
    data = result.to_dict()
    assert [u["healthy"] for u in data["urls"]] == [True, False]
    assert data["healthy"] is False
    assert data["samples_taken"] == 6 and data["failures"] == 3
    assert bad in data["verdict"]["summary"] and good not in data["verdict"]["summary"]
    assert f"{bad} consecutive_failures" in data["verdict"]["failed_checks"]


# --------------------------------------------------------------------------
# Warm-up and deadline
# --------------------------------------------------------------------------


def test_warmup_turns_healthy(server):
    url = pattern_url(server, "FFFS")
    result = probe(url, samples=3, warmup_timeout=5, interval=0.05)
    u = result.urls[0]
    assert result.healthy is True
    assert (u.warmup.enabled, u.warmup.ready, u.warmup.attempts) == (True, True, 4)
    assert (u.samples_taken, u.successes) == (3, 3)
    assert [f.phase for f in u.recent_failures] == ["warmup"] * 3

    # The same server behaviour without a warm-up is a rollback.
    cold = probe(pattern_url(server, "FFFS"), samples=3, interval=0.05)
    assert cold.healthy is False
    assert cold.urls[0].warmup.ready is None


def test_warmup_that_never_succeeds_is_bounded_and_still_sampled(server):
    started = time.monotonic()
    result = probe(f"{server.base}/status/503", samples=2, warmup_timeout=0.5, interval=0.1)
    elapsed = time.monotonic() - started
    u = result.urls[0]
    assert elapsed < 2
    assert u.warmup.ready is False and u.warmup.attempts >= 3
    assert u.samples_taken == 2 and result.healthy is False
    assert "no success during" in result.summary()


def test_deadline_respected_when_server_hangs(server):
    started = time.monotonic()
    result = probe(f"{server.base}/hang", samples=3, request_timeout=30, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert result.deadline_exceeded is True
    assert result.healthy is False
    u = result.urls[0]
    assert u.samples_taken < 3
    assert "samples_taken" in failed_names(result)
    assert u.last_error.startswith("timeout")


def test_deadline_respected_when_server_trickles_bytes(server):
    # Each byte arrives within the read timeout, so only the hard bound stops it.
    started = time.monotonic()
    result = probe(f"{server.base}/trickle", samples=1, request_timeout=30, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert result.healthy is False
    assert result.urls[0].last_error.startswith("timeout")


def test_deadline_stops_sampling(server):
    started = time.monotonic()
    result = probe(f"{server.base}/slow/400", samples=5, interval=0, timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert result.deadline_exceeded is True
    assert 1 <= result.urls[0].samples_taken < 5
    assert "overall deadline reached" in result.summary()


def test_request_timeout_is_reported(server):
    result = probe(f"{server.base}/slow/1000", samples=1, request_timeout=0.3)
    assert result.urls[0].last_error == "timeout: no response within 0.3s"


# --------------------------------------------------------------------------
# Connection errors
# --------------------------------------------------------------------------


def test_connection_refused_message():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    result = probe(f"http://127.0.0.1:{port}/health", samples=2)
    u = result.urls[0]
    assert result.healthy is False
    assert u.last_error == "connection refused"
    assert u.last_status is None
    assert u.latency_avg_ms is None
    assert "last error: connection refused" in result.summary()


def test_connection_closed_without_response(server):
    result = probe(f"{server.base}/close", samples=1)
    assert result.urls[0].last_error == "server closed the connection without a complete response"


def test_recent_failures_are_bounded(server):
    result = probe(f"{server.base}/status/500", samples=12, thresholds=Thresholds(max_consecutive_failures=20))
    u = result.urls[0]
    assert u.failures == 12
    assert [f.index for f in u.recent_failures] == [8, 9, 10, 11, 12]


# --------------------------------------------------------------------------
# Validation and helpers
# --------------------------------------------------------------------------


def test_bad_input_is_rejected_before_probing(server):
    before = sum(server.hits.values())
    with pytest.raises(HealthProbeError) as err:
        HealthProbe(["ftp://example.com/health", f"{server.base}/healthy"], samples=0, interval=-1)
    messages = err.value.errors
    assert any("must start with http:// or https://" in m for m in messages)
    assert any(m.startswith("samples must be an integer >= 1") for m in messages)
    assert any(m.startswith("interval must be >= 0") for m in messages)

    for kwargs in (
        {"method": "HEAD", "body_match": {"health": "healthy"}},
        {"thresholds": Thresholds(max_error_rate=5)},
        {"expected_status": [99]},
        {"samples": 10, "interval": 10, "timeout": 60},
        {"verify": "/nonexistent/ca.pem"},
    ):
        with pytest.raises(HealthProbeError):
            HealthProbe(f"{server.base}/healthy", **kwargs)
    assert sum(server.hits.values()) == before


def test_percentile_nearest_rank():
    assert percentile([5, 1, 3], 95) == 5
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([7], 50) == 7


def test_lookup_path_and_values_match():
    data = {"a": {"b": [{"c": 1}]}, "x.y": "literal"}
    assert lookup_path(data, "a.b.0.c") == 1
    assert lookup_path(data, "x.y") == "literal"
    assert lookup_path(data, "a.z") is _MISSING
    assert lookup_path(data, "a.b.5.c") is _MISSING
    assert values_match(200, "200") and values_match(True, "true") and values_match("up", "up")
    assert not values_match("up", "down") and not values_match(False, "true") and not values_match(1, 2)


def test_ca_bundle_order():
    env = {"REQUESTS_CA_BUNDLE": "/b.pem", "SSL_CERT_DIR": "/dir"}
    assert ca_bundle(False, "/x.pem", env) is False
    assert ca_bundle(True, "/x.pem", env) == "/x.pem"
    assert ca_bundle(True, None, {"SSL_CERT_FILE": "/a.pem", **env}) == "/a.pem"
    assert ca_bundle(True, None, env) == "/b.pem"
    assert ca_bundle(True, None, {}) is True
