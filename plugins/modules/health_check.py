#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_check
short_description: Decide whether an HTTP service is healthy enough to keep, or must be rolled back
version_added: 0.1.0
description:
  - Sends O(samples) requests to each O(url), O(interval) seconds apart, and judges every URL
    against thresholds (consecutive failures, error rate, latency). The result says which threshold
    failed, with the observed value and the limit, so the person running the rollback sees why.
  - A sample fails on a connection error or timeout, an HTTP status not in O(expected_status),
    a JSON body that does not match O(body_match), or a version other than O(expected_version).
    The reason of each failure is reported (the last few per URL).
  - Right after a slot swap or a restart the first requests often fail while the application
    warms up. With O(warmup_timeout), the module first probes until the first success (or the
    warm-up time is over) and only then starts counting samples.
  - The whole run is bounded by O(timeout). No request or wait goes past it, even when a server
    accepts the connection and then stalls; samples not taken by then count against the verdict.
  - By default an unhealthy verdict fails the task (O(fail_on_unhealthy=true)), with a message
    naming the failed thresholds and the evidence per URL. Set O(fail_on_unhealthy=false) to get
    RV(healthy=false) and branch on it, for example to trigger the rollback.
  - The module only reads, runs on the controller (use C(delegate_to=localhost) or a local
    connection) and never reports a change.
author:
  - sre.rollback maintainers (@sre-rollback)
requirements:
  - httpx >= 0.25
attributes:
  check_mode:
    support: full
    description: Runs the same probes in check mode; they only read.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
options:
  url:
    description:
      - One or more health endpoint URLs (C(http://) or C(https://)).
      - With several URLs every sample round probes each URL once; the task is healthy only when
        every URL is.
    type: list
    elements: str
    required: true
    aliases: [urls]
  samples:
    description:
      - Number of counted requests per URL (warm-up attempts are not counted).
    type: int
    default: 3
  interval:
    description:
      - Seconds between the starts of two sample rounds (and of two warm-up attempts).
      - A round that takes longer than O(interval) is followed by the next one at once.
    type: float
    default: 1.0
  request_timeout:
    description:
      - Seconds one request may take, from connect to the last byte of the body.
      - Never more than what is left of O(timeout).
    type: float
    default: 5
  timeout:
    description:
      - Overall deadline in seconds for the whole check, warm-up included.
      - When it is reached the module stops and reports; missing samples fail the C(samples_taken) check.
      - Must leave room for the samples, that is be larger than (O(samples) - 1) * O(interval).
    type: float
    default: 60
  warmup_timeout:
    description:
      - Seconds to keep probing each URL, every O(interval), until its first success before the
        counted samples start. V(0) disables the warm-up.
      - Use it right after a slot swap or restart, when the first requests are expected to fail.
      - A URL that never succeeds during the warm-up is still sampled, so the verdict shows the evidence.
    type: float
    default: 0
  method:
    description:
      - HTTP method. V(HEAD) cannot be combined with O(body_match), nor with O(expected_version)
        unless O(version_header) is set.
    type: str
    choices: [GET, HEAD]
    default: GET
  headers:
    description:
      - Extra request headers, for example C(Authorization) or C(Host).
      - Values are treated as secrets (C(no_log)) and never appear in the result. Ansible masks
        every occurrence of a header value in the output, so avoid short non-secret values here.
    type: dict
  expected_status:
    description:
      - HTTP status codes that count as success. A redirect is a failure unless listed here or
        O(follow_redirects=true).
    type: list
    elements: int
    default: [200]
  body_match:
    description:
      - >-
        JSON body fields that must have the given values, as a dictionary of dotted path to expected value,
        for example C({"health": "healthy"}) or C({"status.db": "up", "checks.0.status": "pass"}).
      - Scalars compare leniently in spelling only (V(200) matches C("200"), V(true) matches C("true")).
      - A body that is not JSON fails the sample.
    type: dict
  expected_version:
    description:
      - The version every response must report, read from O(version_header) when set, otherwise
        from the JSON body field O(version_field). Use it to confirm that the rollback really put
        the previous release back in front of users.
      - Observed versions are reported in RV(urls[].versions) even when this is not set.
    type: str
  version_field:
    description:
      - Dotted path of the JSON body field holding the version.
    type: str
    default: version
  version_header:
    description:
      - Response header holding the version (for example C(X-App-Version)). Takes precedence over O(version_field).
    type: str
  validate_certs:
    description:
      - Verify the server TLS certificate. Only set V(false) against a test endpoint.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle file (or directory of hashed certificates) to verify the server certificate with,
        for example the corporate TLS-inspection CA.
      - When unset, the E(SSL_CERT_FILE), E(REQUESTS_CA_BUNDLE) and E(SSL_CERT_DIR) environment
        variables are honoured in that order, as httpx and requests users expect; without them the
        httpx default bundle (certifi) is used.
    type: path
  follow_redirects:
    description:
      - Follow HTTP redirects and judge the final response.
    type: bool
    default: false
  max_consecutive_failures:
    description:
      - A run of this many failed samples in a row makes a URL unhealthy (the runbook trigger,
        3 consecutive failures trigger rollback).
    type: int
    default: 3
  max_error_rate:
    description:
      - Highest tolerated fraction of failed samples per URL, between V(0) and V(1) (V(0.05) is 5%).
      - With the default 3 samples any failure exceeds 5%; use more samples for a meaningful rate.
    type: float
    default: 0.05
  max_latency_avg_ms:
    description:
      - Highest tolerated average response time in milliseconds, over the samples that got a response.
      - Not checked when unset.
    type: float
  max_latency_p95_ms:
    description:
      - Highest tolerated 95th percentile response time in milliseconds (nearest rank), over the
        samples that got a response. Not checked when unset.
    type: float
  fail_on_unhealthy:
    description:
      - Fail the task when the verdict is unhealthy, with a message naming the failed thresholds and
        the evidence per URL.
      - With V(false) the task succeeds and returns RV(healthy=false) for the play to branch on.
      - Invalid options always fail, before any request is sent.
    type: bool
    default: true
notes:
  - Runs on the controller's Python; the C(httpx) library must be installed there.
  - The probes are sequential. Expect roughly O(samples) * max(O(interval), response time) seconds per run.
seealso:
  - name: httpx
    description: The HTTP client the probes use.
    link: https://www.python-httpx.org/
"""

EXAMPLES = r"""
- name: Fundrbolt production API answers on /health (runbook step "curl -f .../health")
  sre.rollback.health_check:
    url: https://fundrbolt-production-api.azurewebsites.net/health
  delegate_to: localhost

- name: mvp011 after the slot swap - healthy, fast, and stable, or roll back
  sre.rollback.health_check:
    url: https://mvp011-api.azurewebsites.net/health
    warmup_timeout: 120          # cold start after the swap
    samples: 20
    interval: 3
    timeout: 240
    body_match:
      health: healthy            # /health returns "health": "healthy"
    max_latency_avg_ms: 3000     # response time < 3 s
    max_error_rate: 0.01         # error rate < 1%
    max_consecutive_failures: 3  # 3 consecutive failures trigger rollback
    fail_on_unhealthy: false
  delegate_to: localhost
  register: mvp011_health

- name: Swap back when the new slot is unhealthy
  ansible.builtin.debug:
    msg: "Rolling back: {{ mvp011_health.verdict.summary }}"
  when: not mvp011_health.healthy

- name: Confirm the rollback restored the previous release on every instance
  sre.rollback.health_check:
    urls:
      - https://api.example.com/health
      - https://api-eu.example.com/health
    expected_version: "{{ previous_release }}"
    version_header: X-App-Version
    body_match:
      status.db: up
    headers:
      Authorization: "Bearer {{ health_token }}"
    ca_path: /etc/pki/tls/certs/corporate-ca.pem
  delegate_to: localhost
"""

RETURN = r"""
changed:
  description: Always V(false); the module only reads.
  returned: always
  type: bool
  sample: false
healthy:
  description: Whether every URL passed every threshold.
  returned: success
  type: bool
  sample: true
duration_s:
  description: Wall-clock seconds the check took, warm-up included.
  returned: success
  type: float
  sample: 2.04
deadline_exceeded:
  description: Whether O(timeout) stopped the run before all samples were taken.
  returned: success
  type: bool
  sample: false
samples_taken:
  description: Counted samples over all URLs.
  returned: success
  type: int
  sample: 3
successes:
  description: Successful counted samples over all URLs.
  returned: success
  type: int
  sample: 3
failures:
  description: Failed counted samples over all URLs.
  returned: success
  type: int
  sample: 0
error_rate:
  description: Failed fraction of the counted samples over all URLs (V(null) when none was taken).
  returned: success
  type: float
  sample: 0.0
verdict:
  description: The overall verdict. The task is healthy only when every per-URL check passed.
  returned: success
  type: dict
  contains:
    healthy:
      description: Same as RV(healthy).
      type: bool
      sample: false
    failed_checks:
      description: Failed checks, as C(<url> <check>).
      type: list
      elements: str
      sample: ["https://api.example.com/health consecutive_failures"]
    summary:
      description: One line per unhealthy URL naming the failed thresholds and the evidence; empty when healthy.
      type: str
      sample: >-
        https://api.example.com/health: consecutive_failures 3 (must be < 3), error_rate 1 (must be <= 0.05)
        [0/3 samples ok, last error: connection refused]
    checks:
      description: Every check of every URL.
      type: list
      elements: dict
      contains:
        url:
          description: The URL the check is about.
          type: str
        name:
          description: >-
            C(samples_taken), C(consecutive_failures), C(error_rate), C(latency_avg_ms) or C(latency_p95_ms).
          type: str
        observed:
          description: The observed value (V(null) when there was nothing to measure).
          type: raw
        limit:
          description: The threshold.
          type: raw
        rule:
          description: The condition the observed value must meet, for example C(< 3).
          type: str
        passed:
          description: Whether the check passed.
          type: bool
urls:
  description: Per-URL results, in the order of O(url).
  returned: success
  type: list
  elements: dict
  contains:
    url:
      description: The URL probed.
      type: str
    healthy:
      description: Whether this URL passed every check.
      type: bool
    samples_requested:
      description: O(samples).
      type: int
    samples_taken:
      description: Counted samples actually taken (fewer when the deadline was reached).
      type: int
    successes:
      description: Successful samples.
      type: int
    failures:
      description: Failed samples.
      type: int
    consecutive_failures_max:
      description: Longest run of consecutive failed samples.
      type: int
    consecutive_failures_trailing:
      description: Failed samples in a row at the end of the run (still failing when the check ended).
      type: int
    error_rate:
      description: Failed fraction of the samples, 0 to 1.
      type: float
    latency_avg_ms:
      description: Average response time in milliseconds over the samples that got a response.
      type: float
    latency_p95_ms:
      description: 95th percentile (nearest rank) response time in milliseconds.
      type: float
    latency_max_ms:
      description: Slowest response time in milliseconds.
      type: float
    last_status:
      description: HTTP status of the last response received (V(null) if none).
      type: int
      sample: 200
    last_error:
      description: >-
        Reason of the last failed request, for example C(connection refused),
        C(timeout: no response within 5s), C(TLS error: certificate verify failed (...)),
        C(HTTP 503 Service Unavailable (expected 200)).
      type: str
    versions:
      description: Distinct versions observed (from O(version_header) or O(version_field)), in order of appearance.
      type: list
      elements: str
      sample: ["2025.11.3"]
    recent_failures:
      description: The last few failures (at most 5), warm-up attempts included.
      type: list
      elements: dict
      contains:
        phase:
          description: C(warmup) or C(sample).
          type: str
        index:
          description: Attempt or sample number, from 1.
          type: int
        reason:
          description: Why it failed.
          type: str
        status:
          description: HTTP status, if a response arrived.
          type: int
    warmup:
      description: Warm-up phase details.
      type: dict
      contains:
        enabled:
          description: Whether O(warmup_timeout) was set.
          type: bool
        attempts:
          description: Warm-up requests sent.
          type: int
        ready:
          description: Whether a success was seen during the warm-up (V(null) when disabled).
          type: bool
        seconds:
          description: Seconds from the start until the first success or the end of the warm-up.
          type: float
    verdict:
      description: This URL's checks, same shape as RV(verdict.checks) without C(url), plus C(healthy) and C(failed_checks).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.sre.rollback.plugins.module_utils.health import (
    HTTPX_IMPORT_ERROR,
    HealthProbe,
    HealthProbeError,
    Thresholds,
)
from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="list", elements="str", required=True, aliases=["urls"]),
            samples=dict(type="int", default=3),
            interval=dict(type="float", default=1.0),
            request_timeout=dict(type="float", default=5),
            timeout=dict(type="float", default=60),
            warmup_timeout=dict(type="float", default=0),
            method=dict(type="str", default="GET", choices=["GET", "HEAD"]),
            headers=dict(type="dict", no_log=True),
            expected_status=dict(type="list", elements="int", default=[200]),
            body_match=dict(type="dict"),
            expected_version=dict(type="str"),
            version_field=dict(type="str", default="version"),
            version_header=dict(type="str"),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            follow_redirects=dict(type="bool", default=False),
            max_consecutive_failures=dict(type="int", default=3),
            max_error_rate=dict(type="float", default=0.05),
            max_latency_avg_ms=dict(type="float"),
            max_latency_p95_ms=dict(type="float"),
            fail_on_unhealthy=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if HTTPX_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR)

    p = module.params
    try:
        probe = HealthProbe(
            p["url"],
            samples=p["samples"],
            interval=p["interval"],
            request_timeout=p["request_timeout"],
            timeout=p["timeout"],
            warmup_timeout=p["warmup_timeout"],
            method=p["method"],
            headers={str(k): str(v) for k, v in (p["headers"] or {}).items()},
            expected_status=p["expected_status"],
            body_match=p["body_match"],
            expected_version=p["expected_version"],
            version_field=p["version_field"],
            version_header=p["version_header"],
            verify=ca_bundle(p["validate_certs"], p["ca_path"]),
            follow_redirects=p["follow_redirects"],
            thresholds=Thresholds(
                max_consecutive_failures=p["max_consecutive_failures"],
                max_error_rate=p["max_error_rate"],
                max_latency_avg_ms=p["max_latency_avg_ms"],
                max_latency_p95_ms=p["max_latency_p95_ms"],
            ),
        )
    except HealthProbeError as exc:
        module.fail_json(msg=f"Invalid health_check options, nothing was probed: {exc}", errors=exc.errors)

    result = probe.run().to_dict()
    if not result["healthy"] and p["fail_on_unhealthy"]:
        unhealthy = sum(1 for u in result["urls"] if not u["healthy"])
        module.fail_json(
            msg=f"Unhealthy: {unhealthy} of {len(result['urls'])} URL(s) failed the health thresholds. "
            + result["verdict"]["summary"],
            changed=False,
            **result,
        )
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
