#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bluegreen_rollback
short_description: Switch a blue/green deployment controller back to the previous environment and verify it
version_added: 0.1.0
description:
  - Drives the HTTP API of a blue/green deployment controller, as in the mvp011 runbook
    (C(GET /deployment/status), C(POST /deployment/rollback), C(GET /health)).
  - Reads the status and deployment history first, then decides by desired state. When the active
    environment already is O(target_environment) and runs O(expected_version), and health is good,
    nothing is sent (a re-run is a no-op). Otherwise the rollback is posted, the module waits until the
    controller reports the new active environment, and then verifies the version and the health of the
    active environment (C(health) field V(healthy), response time under O(max_response_time_ms)).
  - Without O(target_environment) or O(expected_version) the module rolls back to the previous
    environment, except when the active environment is healthy and the previous one is reported
    unhealthy (the state right after a rollback); then it changes nothing.
  - Refuses, before sending anything, to roll back to an environment that has no deployment, that the
    controller reports unhealthy, or that is not the requested one (the controller's rollback always
    goes to the previous environment).
  - A controller that accepts the rollback but does not switch makes the task fail after O(wait_timeout)
    with the environment that is still active.
  - The module runs on the controller (use a local connection) and speaks plain HTTP or HTTPS.
author:
  - sre.rollback maintainers (@sre-rollback)
requirements:
  - httpx >= 0.25
attributes:
  check_mode:
    support: full
    description: Reads status, history and health, predicts the environment and version after the rollback, and sends no POST.
  diff_mode:
    support: full
    description: Shows the active environment and its version before and after.
options:
  base_url:
    description:
      - Base URL of the deployment controller, for example C(https://deploy.mvp011.example.com) or the
        runbook's C(http://localhost:8080).
      - Prefer C(https://) whenever O(headers) carry a token; the module warns when credentials would go
        over plain C(http://) to a host other than localhost.
    type: str
    required: true
  status_path:
    description:
      - Path of the status endpoint, answering C(currentEnvironment), C(environments) and C(deploymentHistory).
    type: str
    default: /deployment/status
  rollback_path:
    description:
      - Path the rollback is posted to. The controller switches traffic to the previous environment.
    type: str
    default: /deployment/rollback
  health_path:
    description:
      - Path of the health endpoint of the active environment, answering C(health), C(version) and C(environment).
    type: str
    default: /health
  headers:
    description:
      - Extra request headers for every call, for example C(Authorization).
      - Values are secrets (C(no_log)) and never appear in the result.
    type: dict
  validate_certs:
    description:
      - Verify the controller's TLS certificate. Only set V(false) against a test endpoint.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle file (or directory of hashed certificates) to verify the controller's certificate with.
      - When unset, E(SSL_CERT_FILE), E(REQUESTS_CA_BUNDLE) and E(SSL_CERT_DIR) are honoured in that order.
    type: path
  target_environment:
    description:
      - The environment that must serve traffic afterwards, for example V(blue).
      - The rollback goes to the previous environment; if that is not this one, the task fails and nothing changes.
    type: str
  expected_version:
    description:
      - The version that must serve traffic afterwards (the last known good version from the history).
      - Naming it makes a re-run a no-op and is checked against C(/health) after the switch.
    type: str
  wait_timeout:
    description:
      - Seconds to wait for the controller to report the new active environment after the rollback (and
        for a switch already running before the task to end).
      - When it passes, the task fails naming the environment that is still active.
    type: float
    default: 300
  poll_interval:
    description:
      - Seconds between two status reads while waiting, and between two health probes.
    type: float
    default: 1
  verify_health:
    description:
      - Probe O(health_path) after the switch (and when nothing needs to change) and fail unless C(health) is
        V(healthy), the reported version and environment are the expected ones, and the response time is
        under O(max_response_time_ms).
    type: bool
    default: true
  health_timeout:
    description:
      - Seconds to keep probing health after the switch until it is good (the new environment warming up).
    type: float
    default: 60
  max_response_time_ms:
    description:
      - Slowest acceptable health response, in milliseconds (runbook checklist, response times under 3 seconds).
    type: float
    default: 3000
  timeout:
    description:
      - Seconds one HTTP request may take.
    type: float
    default: 10
  api_retries:
    description:
      - Retries of a call answered with 429 or 5xx or that failed to connect, with exponential back-off
        (C(Retry-After) honoured).
      - The rollback POST is re-sent only after a fresh status shows the controller did not start a switch,
        so a lost answer never causes a second switch.
    type: int
    default: 3
  history_count:
    description:
      - Number of most recent history entries returned (the runbook's C(.deploymentHistory[-5:])).
    type: int
    default: 5
notes:
  - Runs on the controller's Python; the C(httpx) library must be installed there.
seealso:
  - module: sre.rollback.health_check
    description: A sampled health verdict (error rate, latency percentiles) after the rollback.
"""

EXAMPLES = r"""
- name: mvp011 30-second rollback (status, rollback, verify health)
  sre.rollback.bluegreen_rollback:
    base_url: http://localhost:8080
  register: rollback

- name: Roll back to the last known good version; a re-run changes nothing
  sre.rollback.bluegreen_rollback:
    base_url: https://deploy.mvp011.example.com
    expected_version: 2.3.1
    target_environment: blue
    headers:
      Authorization: "Bearer {{ controller_token }}"
    wait_timeout: 120
    max_response_time_ms: 3000
  register: rollback

- name: Plan only - which environment and version would serve traffic after a rollback
  sre.rollback.bluegreen_rollback:
    base_url: https://deploy.mvp011.example.com
    ca_path: /etc/pki/tls/certs/corporate-ca.pem
  check_mode: true
  diff: true
  register: plan

- name: Post-rollback summary (runbook template)
  ansible.builtin.debug:
    msg: >-
      ROLLBACK COMPLETED. Environment {{ rollback.after.environment | upper }} ({{ rollback.after.version }}),
      duration {{ rollback.duration_s }}s, health {{ rollback.health.health }}
      in {{ rollback.health.response_time_ms }} ms.
"""

RETURN = r"""
rolled_back:
  description: Whether traffic was switched (in check mode, would be).
  returned: always
  type: bool
  sample: true
before:
  description: The active environment before the task, its version and the health the controller reports for it.
  returned: always
  type: dict
  sample: {environment: green, version: 2.4.0, health: unhealthy}
after:
  description: The active environment after the task (a prediction in check mode).
  returned: always
  type: dict
  sample: {environment: blue, version: 2.3.1, health: healthy}
history:
  description: The most recent O(history_count) deployment history entries, oldest first (after the task when it switched).
  returned: always
  type: list
  elements: dict
  sample:
    - {environment: green, version: 2.4.0, timestamp: "2025-11-10T14:05:10.000Z", action: switch}
    - {environment: blue, version: 2.3.1, timestamp: "2025-11-10T15:01:02.345Z", action: rollback}
environments:
  description: Every environment the controller reported before the task, with its version and health.
  returned: always
  type: dict
  sample: {blue: {version: 2.3.1, health: healthy}, green: {version: 2.4.0, health: unhealthy}}
operation:
  description: >-
    What was decided and done. C(action) is V(rollback) or V(none); C(status) is V(predicted), V(succeeded)
    or V(none); C(progress) lists each change of the observed active environment and controller status while
    waiting; C(response) is the controller's answer to the POST and C(attempts) each try of it.
  returned: always
  type: dict
  sample:
    action: rollback
    reason: switch traffic from green (2.4.0) back to blue (2.3.1)
    from: green
    to: blue
    from_version: 2.4.0
    to_version: 2.3.1
    status: succeeded
    http_status: 202
    attempts: [{status_code: 202, error: null}]
    progress: [{elapsed_s: 0.05, current_environment: green, status: switching},
               {elapsed_s: 1.07, current_environment: blue, status: stable}]
health_before:
  description: One probe of the health URL before deciding.
  returned: always
  type: dict
health:
  description: >-
    The verification of the active environment after the task - the last probe (C(url), C(status_code),
    C(health), C(version), C(environment), C(response_time_ms)), C(healthy), C(problems) and C(attempts).
  returned: when O(verify_health=true) and not in check mode with a predicted change
  type: dict
  sample: {url: "http://localhost:8080/health", status_code: 200, health: healthy, version: 2.3.1,
           environment: blue, response_time_ms: 12.4, healthy: true, problems: [], attempts: 1}
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.bluegreen import (
    DEFAULT_PATHS,
    HTTPX_IMPORT_ERROR,
    BlueGreenRollback,
    ControllerClient,
    plain_http_secret_warning,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.trust import tls_verify


def main():
    module = RollbackModule(
        argument_spec=dict(
            base_url=dict(type="str", required=True),
            status_path=dict(type="str", default=DEFAULT_PATHS["status"]),
            rollback_path=dict(type="str", default=DEFAULT_PATHS["rollback"]),
            health_path=dict(type="str", default=DEFAULT_PATHS["health"]),
            headers=dict(type="dict", no_log=True),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            target_environment=dict(type="str"),
            expected_version=dict(type="str"),
            wait_timeout=dict(type="float", default=300),
            poll_interval=dict(type="float", default=1),
            verify_health=dict(type="bool", default=True),
            health_timeout=dict(type="float", default=60),
            max_response_time_ms=dict(type="float", default=3000),
            timeout=dict(type="float", default=10),
            api_retries=dict(type="int", default=3),
            history_count=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def rollback():
        headers = {str(k): str(v) for k, v in (params["headers"] or {}).items()}
        warning = plain_http_secret_warning(params["base_url"], headers)
        if warning:
            module.warn(warning)
        client = ControllerClient(
            params["base_url"],
            paths={"status": params["status_path"], "rollback": params["rollback_path"],
                   "health": params["health_path"]},
            headers=headers,
            verify=tls_verify(params["validate_certs"], params["ca_path"]),
            timeout=params["timeout"],
            retries=params["api_retries"],
        )
        try:
            procedure = BlueGreenRollback(
                client,
                target_environment=params["target_environment"],
                expected_version=params["expected_version"],
                wait_timeout=params["wait_timeout"],
                poll_interval=params["poll_interval"],
                verify_health=params["verify_health"],
                health_timeout=params["health_timeout"],
                max_response_time_ms=params["max_response_time_ms"],
                history_count=params["history_count"],
                check_mode=module.check_mode,
            )
            changed, result = procedure.run()
        finally:
            client.close()
        for message in result.pop("warnings"):
            module.warn(message)
        if not module.diff_mode:
            result.pop("diff")
        return changed, result

    module.run(rollback)


if __name__ == "__main__":
    main()
