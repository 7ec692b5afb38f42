#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollback_trigger
short_description: Evaluate the automatic rollback triggers of a service over live probes, Prometheus or Azure Monitor
version_added: 0.1.0
author:
  - sre.rollback maintainers (@sre-rollback)
description:
  - Evaluates the trigger policy of mvp011-blue-green-rollback-playbook.md "Rollback Triggers" and says which
    triggers fired, with the evidence (values, window, samples), and what the runbooks recommend
    (rollback, with the severity and recovery-time target of the trigger's class).
  - The defaults are the runbook's values, namely 3 consecutive health check failures, error rate above 5 % for
    2 minutes, average response time above 3 s for 5 minutes, memory above 90 % for 10 minutes, CPU above 95 %
    for 5 minutes. Override any threshold, window or class with O(policy).
  - A windowed trigger fires only when the condition held over the whole window; until the source has data
    for the whole window the trigger is C(pending).
  - A source that cannot be read makes its triggers C(unknown) and the verdict C(unknown), never C(healthy).
    A metric the source does not measure is C(not_observed) (HTTP probes know nothing of memory).
  - With O(watch) the module keeps evaluating every O(interval) seconds and returns as soon as a trigger
    fires, or when the watch ends. It only observes; acting on the answer is the roles' job
    (C(playbooks/auto-rollback.yml) watches a service after a deploy and rolls it back).
requirements:
  - httpx
  - azure-mgmt-monitor and azure-mgmt-web (for O(source=azure_monitor))
attributes:
  check_mode:
    support: full
    description: Evaluates the same way in check mode; the module only reads.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
extends_documentation_fragment:
  - sre.rollback.azure
options:
  source:
    description:
      - Where the metrics come from.
      - C(http) probes O(urls) itself, once per O(interval); its windows are over its own samples.
      - C(prometheus) queries the Prometheus HTTP API at O(prometheus_url) for series matching O(selector).
      - C(azure_monitor) reads Azure Monitor metrics of the App Service app O(name) (Requests, Http5xx,
        HttpResponseTime) and of its plan (CpuPercentage, MemoryPercentage).
    type: str
    required: true
    choices: [http, prometheus, azure_monitor]
  policy:
    description:
      - Overrides of the default triggers, by name (C(health_check_failures), C(error_rate), C(response_time),
        C(memory), C(cpu)); each a dict of C(threshold), C(window_s), C(category)
        (C(critical), C(performance), C(feature), C(non_critical)) and C(enabled).
      - Units are those of the runbook, namely failures, percent, milliseconds, percent, percent.
    type: dict
    default: {}
  interval:
    description: Seconds between evaluations (and between probes for C(http)).
    type: float
    default: 10
  watch:
    description:
      - Seconds to keep evaluating; the module returns as soon as a trigger fires.
      - C(0) evaluates once (for C(http), one probe per URL).
    type: float
    default: 0
  fail_on_fire:
    description: Fail the task when a trigger fired (the result still carries the evidence).
    type: bool
    default: false
  urls:
    description: The health URLs to probe (C(http)).
    type: list
    elements: str
    default: []
  expected_status:
    description: HTTP status codes that count as a successful probe (C(http)).
    type: list
    elements: int
    default: [200]
  request_timeout:
    description: Seconds one probe or query may take.
    type: float
    default: 5
  validate_certs:
    description: Verify TLS certificates (C(http), C(prometheus)).
    type: bool
    default: true
  ca_path:
    description:
      - A CA bundle to trust (C(http), C(prometheus)); defaults to E(SSL_CERT_FILE) or E(REQUESTS_CA_BUNDLE) when set.
    type: path
  prometheus_url:
    description: The Prometheus server, for example C(http://prometheus:9090) (C(prometheus)).
    type: str
  selector:
    description: Label matchers of the service's series, for example C(job="fundrbolt-api") (C(prometheus)).
    type: str
    default: ""
  queries:
    description:
      - PromQL per trigger name, overriding the defaults built on C(http_requests_total),
        C(http_request_duration_seconds) and C(process_cpu_seconds_total); C($selector) stands for O(selector).
      - C(memory) has no default (it needs the container's limit).
      - C(health_check_failures) takes an expression that is 1 while the service answers and 0 when it does not;
        the default is C(max(up{$selector})), so the selector must match the scrape target's labels.
    type: dict
    default: {}
  scrape_interval:
    description: The Prometheus scrape interval of the service's job, in seconds (C(prometheus)).
    type: float
    default: 15
  resource_group:
    description: The app's resource group (C(azure_monitor)).
    type: str
  name:
    description: The App Service app (C(azure_monitor)).
    type: str
  plan_id:
    description:
      - The resource id of the app's App Service plan, for C(cpu) and C(memory) (C(azure_monitor)).
      - Defaults to the plan the app runs on.
    type: str
seealso:
  - module: sre.rollback.health_check
"""

EXAMPLES = r"""
- name: Watch production for 10 minutes after the deploy, probing every 10 s
  sre.rollback.rollback_trigger:
    source: http
    urls: ["https://api.fundrbolt.example/health"]
    interval: 10
    watch: 600
  register: triggers

- name: Roll back when a trigger fired
  ansible.builtin.include_role:
    name: sre.rollback.app_service_rollback
  when: triggers.verdict == 'rollback'

- name: Ask Prometheus whether any trigger holds now (error rate over 2 minutes, and so on)
  sre.rollback.rollback_trigger:
    source: prometheus
    prometheus_url: http://prometheus.monitoring:9090
    selector: job="fundrbolt-api"
    queries:
      memory: '100 * max(container_memory_working_set_bytes{$selector}) / max(container_spec_memory_limit_bytes{$selector})'

- name: Azure Monitor metrics of the app and its plan, with a stricter error-rate trigger
  sre.rollback.rollback_trigger:
    source: azure_monitor
    resource_group: rg-fundrbolt-prod
    name: fundrbolt-api
    policy:
      error_rate: {threshold: 2, window_s: 120}
      memory: {enabled: false}
"""

RETURN = r"""
verdict:
  description:
    - C(rollback) (a trigger fired), C(unknown) (a trigger could not be judged), C(watching) (a window is not
      covered yet) or C(healthy).
  returned: always
  type: str
fired:
  description: The triggers that fired.
  returned: always
  type: list
  elements: str
unknown:
  description: The triggers the source could not judge.
  returned: always
  type: list
  elements: str
triggers:
  description:
    - Per trigger, C(status) (fired, ok, pending, unknown, not_observed), C(value), C(threshold), C(window_s),
      C(covered_s), C(unit), C(detail) and C(evidence).
  returned: always
  type: dict
recommended_action:
  description:
    - C(action) (rollback, investigate, none) and C(reason); for a rollback also C(category), C(severity)
      and C(recovery_target_s) from the runbook's recovery time objectives.
  returned: always
  type: dict
evaluations:
  description: How many times the policy was evaluated.
  returned: always
  type: int
watched_s:
  description: Seconds the module watched.
  returned: always
  type: float
started_at:
  description: When the watch started (UTC, ISO 8601).
  returned: always
  type: str
fired_at:
  description: When a trigger was seen firing (UTC, ISO 8601), or null.
  returned: always
  type: str
source:
  description: The metrics source.
  returned: always
  type: str
policy:
  description: The effective policy.
  returned: always
  type: dict
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.health import HTTPX_IMPORT_ERROR
from ansible_collections.sre.rollback.plugins.module_utils.rollback_trigger import (
    TriggerPolicy,
    TriggerWatch,
)
from ansible_collections.sre.rollback.plugins.module_utils.trigger_sources import build_source


def main():
    module = RollbackModule(
        argument_spec=dict(
            source=dict(type="str", required=True, choices=["http", "prometheus", "azure_monitor"]),
            policy=dict(type="dict", default={}),
            interval=dict(type="float", default=10),
            watch=dict(type="float", default=0),
            fail_on_fire=dict(type="bool", default=False),
            urls=dict(type="list", elements="str", default=[]),
            expected_status=dict(type="list", elements="int", default=[200]),
            request_timeout=dict(type="float", default=5),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            prometheus_url=dict(type="str"),
            selector=dict(type="str", default=""),
            queries=dict(type="dict", default={}),
            scrape_interval=dict(type="float", default=15),
            resource_group=dict(type="str"),
            name=dict(type="str"),
            plan_id=dict(type="str"),
        ),
        fragments=[AZURE_AUTH_ARGSPEC],
        required_if=[
            ("source", "prometheus", ("prometheus_url", "selector")),
            ("source", "azure_monitor", ("resource_group", "name")),
        ],
        supports_check_mode=True,
    )
    module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def evaluate():
        if params["interval"] <= 0 or params["watch"] < 0:
            raise RollbackError("interval must be more than 0 and watch 0 or more seconds.")
        policy = TriggerPolicy.from_overrides(params["policy"])
        source = build_source(params)
        result = TriggerWatch(source, policy, interval=params["interval"], watch_s=params["watch"]).run()
        if params["fail_on_fire"] and result["fired"]:
            raise RollbackError("Rollback trigger(s) fired: %s." % "; ".join(
                "%s (%s)" % (name, result["triggers"][name]["detail"]) for name in result["fired"]), **result)
        return False, result

    module.run(evaluate)


if __name__ == "__main__":
    main()
