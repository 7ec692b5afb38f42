# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Build a rollback_trigger metrics source from module parameters.

Kept apart from rollback_trigger.py so the policy and the evaluator stay free of
the HTTP and Azure client wiring (and unit tests drive them with plain fakes).
"""

from __future__ import annotations

import traceback

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_errors import arm_call
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.health import HealthProbe, HealthProbeError
from ansible_collections.sre.rollback.plugins.module_utils.rollback_trigger import (
    AzureMonitorSource,
    HttpProbeSource,
    PrometheusSource,
)
from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle, tls_verify


def build_source(params):
    source = params["source"]
    if source == "http":
        return http_source(params)
    if source == "prometheus":
        return PrometheusSource(params["prometheus_url"], params["selector"], queries=params["queries"],
                                scrape_interval_s=params["scrape_interval"],
                                verify=tls_verify(params["validate_certs"], params["ca_path"]),
                                timeout=params["request_timeout"])
    return azure_monitor_source(params)


def http_source(params):
    if not params["urls"]:
        raise RollbackError("source=http needs urls: the health URLs to probe.")
    verify = ca_bundle(params["validate_certs"], params["ca_path"])
    timeout = params["request_timeout"]

    def probe(url):
        # One sample per call: the same request and judgement as health_check (status, watchdog, TLS).
        result = HealthProbe([url], samples=1, interval=0, request_timeout=timeout, timeout=timeout + 1,
                             expected_status=params["expected_status"], version_field=None, verify=verify).run()
        outcome = result.urls[0]
        return outcome.successes == 1, outcome.latency_avg_ms, outcome.last_error

    try:
        # Validate every URL and option before the first probe.
        HealthProbe(params["urls"], samples=1, interval=0, request_timeout=timeout, timeout=timeout + 1,
                    expected_status=params["expected_status"], version_field=None, verify=verify)
    except HealthProbeError as err:
        raise RollbackError("Invalid probe settings: %s." % err) from err
    return HttpProbeSource(params["urls"], probe)


def azure_monitor_source(params):
    # Imported here, not at the top: the SDKs cost about 0.5 s of CPU, and a watch by HTTP probes or
    # Prometheus starts right after a deploy, when every second counts toward detection.
    try:
        from azure.mgmt.monitor import MonitorManagementClient
        from azure.mgmt.web import WebSiteManagementClient
    except ImportError as err:
        raise RollbackError("source=azure_monitor needs the azure-mgmt-monitor and azure-mgmt-web Python libraries: "
                            "pip install azure-mgmt-monitor azure-mgmt-web.", exception=traceback.format_exc()) from err
    settings = AzureSettings.from_params(params)
    credential = settings.credential()
    with arm_call("Signing in to Azure"):
        credential.get_token(settings.credential_scope)
    web = WebSiteManagementClient(credential, settings.subscription_id, **settings.client_kwargs())
    with arm_call("Reading app %s" % params["name"],
                  not_found="App %s not found in resource group %s." % (params["name"], params["resource_group"])):
        site = web.web_apps.get(params["resource_group"], params["name"])
    monitor = MonitorManagementClient(credential, settings.subscription_id, **settings.client_kwargs())
    return AzureMonitorSource(monitor.metrics.list, site.id, plan_id=params["plan_id"] or site.server_farm_id)
