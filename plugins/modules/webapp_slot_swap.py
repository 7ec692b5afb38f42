#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webapp_slot_swap
short_description: Swap Azure App Service deployment slots, idempotently, and wait for the swap to finish
version_added: 0.1.0
description:
  - Swaps the content of a source slot (for example C(staging)) into a target slot (by default C(production)),
    the move the team runbooks make to roll a bad backend deploy back in about thirty seconds.
  - B(Idempotent by desired state.) O(expected_build) names the build the target slot must run, identified by
    its fingerprint (O(fingerprint)). The module swaps only when the target does not run that build and the
    source does; when the target already runs it nothing changes, so a re-run never swaps the bad build back in.
  - Waits for the long-running swap to finish (O(wait_timeout)), then checks that the target really runs the
    build that was in the source. A failed or timed-out swap fails the task and says what each slot runs now.
  - Supports swap with preview (multi-phase swap) with O(action=preview), O(action=complete) and O(action=reset).
  - With O(source_health_url) it first probes the build in the source slot, right before the swap, and refuses
    to swap in a build that is unhealthy in its own slot (the task fails, nothing is changed). One task then does
    the whole act of a rollback, which is what an automatic rollback needs to be fast.
  - In check mode the module reads both slots and predicts the outcome without changing anything;
    with C(--diff) it shows the build in each slot before and after.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.azure.webapp
options:
  slot:
    description:
      - The source slot, whose build moves into O(target_slot).
      - Use C(production) to swap production out into another slot.
    type: str
    required: true
    aliases: [source_slot]
  target_slot:
    description: The slot that receives the source slot's build.
    type: str
    default: production
  action:
    description:
      - V(swap) swaps in one step.
      - V(preview) starts a swap with preview; the source slot takes the target's slot-specific settings
        and warms up, nothing moves yet.
      - V(complete) completes a pending preview by swapping.
      - V(reset) cancels a pending preview; the source slot gets its own settings back.
    type: str
    choices: [swap, preview, complete, reset]
    default: swap
  expected_build:
    description:
      - The build O(target_slot) must run when the task is done, given as its fingerprint value, that is
        an image reference (C(myacr.azurecr.io/api:1.4.2)), just its tag (C(1.4.2)) or C(repository:tag),
        a deployment id, or the value of O(fingerprint_setting).
      - If no slot runs this build the task fails before changing anything.
      - Without it the module swaps whenever the two slots run different builds, which is not idempotent;
        a second run swaps back. The module warns when it is omitted.
    type: str
  fingerprint:
    description:
      - How a slot's build is identified.
      - V(image) is the container image of C(linuxFxVersion) (or C(windowsFxVersion)).
      - V(deployment_id) is the active deployment of the slot (zip or Kudu deployments).
      - V(app_setting) is the value of the app setting O(fingerprint_setting), which must not be slot-specific.
    type: str
    choices: [image, deployment_id, app_setting]
    default: image
  fingerprint_setting:
    description: The app setting that carries the build version when O(fingerprint=app_setting).
    type: str
    default: APP_VERSION
  wait:
    description:
      - Wait for the swap to finish and verify the result.
      - With V(false) the task returns as soon as Azure accepted the swap; RV(after) is then a prediction.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the swap. A swap still running at the deadline fails the task,
        reporting what each slot runs at that moment.
    type: int
    default: 900
  source_health_url:
    description:
      - The health URL of the source slot (for example C(https://api-staging.azurewebsites.net/health)).
      - When given, the module probes it O(source_health_samples) times, O(source_health_interval) seconds apart,
        while it reads the slots, and swaps only when every sample is healthy (an HTTP 200 that matches
        O(source_health_body_match)); otherwise the task fails and nothing is changed.
      - The verdict is used only when a swap is about to happen; when nothing needs swapping (the target already
        runs O(expected_build)), or for O(action=preview) or O(action=reset), it is ignored and RV(source_health)
        is V(null). Used in check mode too, so a plan predicts the refusal.
      - HTTPS is verified against the CA bundle named by C(SSL_CERT_FILE), C(REQUESTS_CA_BUNDLE) or C(SSL_CERT_DIR),
        else the system's store.
    type: str
  source_health_samples:
    description: How many probes of O(source_health_url) must all be healthy.
    type: int
    default: 2
  source_health_interval:
    description: Seconds between two probes of O(source_health_url).
    type: float
    default: 0.5
  source_health_body_match:
    description:
      - "Fields the JSON body of O(source_health_url) must contain, as in M(sre.rollback.health_check)'s C(body_match)
        (for example C({status: healthy}))."
    type: dict
notes:
  - Needs C(Microsoft.Web/sites/slots/slotsswap/action) (swap), C(Microsoft.Web/sites/slots/read)
    and C(Microsoft.Web/sites/config/list/action) (reading app settings) on the app, for example through
    the C(Website Contributor) role.
  - Swapping moves the content (code, container image, non-sticky settings, deployment history) and leaves host
    names and slot-specific settings in place, as App Service does.
seealso:
  - module: sre.rollback.webapp_slot_info
  - module: sre.rollback.health_check
  - name: Set up staging environments in Azure App Service
    description: How App Service swaps slots, and swap with preview.
    link: https://learn.microsoft.com/azure/app-service/deploy-staging-slots
requirements:
  - azure-mgmt-web >= 7.2
"""

EXAMPLES = r"""
- name: Roll production back to the build kept in staging (fundrbolt "Manual Slot Swap Rollback")
  sre.rollback.webapp_slot_swap:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-api
    slot: staging
    target_slot: production
    expected_build: "1.4.2"
  register: rollback

- name: Automatic rollback in one task (playbooks/auto-rollback.yml) - refuse a build unhealthy in staging
  sre.rollback.webapp_slot_swap:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-api
    slot: staging
    expected_build: "{{ build_captured_before_the_watch }}"
    source_health_url: https://fundrbolt-production-api-staging.azurewebsites.net/health
    source_health_samples: 2
    source_health_interval: 0.5

- name: Identify builds by an app setting written at deploy time
  sre.rollback.webapp_slot_swap:
    resource_group: rg-sf-ai-assistant
    name: app-sf-ai-assistant-crm
    slot: staging
    fingerprint: app_setting
    fingerprint_setting: APP_VERSION
    expected_build: "{{ last_known_good_version }}"

- name: Swap with preview, check the warmed-up slot, then complete
  block:
    - name: Apply production's settings to staging and warm it up (phase one)
      sre.rollback.webapp_slot_swap:
        resource_group: rg-mystira-prod
        name: mystira-app
        slot: staging
        action: preview
    - name: Check the warmed-up staging slot
      sre.rollback.health_check:
        url: https://mystira-app-staging.azurewebsites.net/health
    - name: Complete the swap (phase two)
      sre.rollback.webapp_slot_swap:
        resource_group: rg-mystira-prod
        name: mystira-app
        slot: staging
        action: complete
  rescue:
    - name: Cancel the swap; staging gets its own settings back
      sre.rollback.webapp_slot_swap:
        resource_group: rg-mystira-prod
        name: mystira-app
        slot: staging
        action: reset

- name: Against a sovereign cloud, with credentials for the whole play
  module_defaults:
    group/sre.rollback.azure:
      cloud: AzureUSGovernment
  sre.rollback.webapp_slot_swap:
    resource_group: rg-api
    name: api
    slot: staging
    expected_build: myacr.azurecr.us/api:2.0.1
"""

RETURN = r"""
swapped:
  description: Whether slots were swapped (or, in check mode, would be).
  returned: always
  type: bool
before:
  description: Each of the two slots before the task, keyed by slot name.
  returned: always
  type: dict
  sample:
    production: {slot: production, image: "myacr.azurecr.io/api:1.5.0", fingerprint: "myacr.azurecr.io/api:1.5.0",
                 default_host_name: api.azurewebsites.net, state: Running, target_swap_slot: null}
    staging: {slot: staging, image: "myacr.azurecr.io/api:1.4.2", fingerprint: "myacr.azurecr.io/api:1.4.2"}
after:
  description: Each of the two slots after the task (a prediction in check mode or with O(wait=false)).
  returned: always
  type: dict
operation:
  description: What was done, its final status and the progress of the wait (elapsed seconds and status).
  returned: always
  type: dict
  sample:
    action: swap
    kind: slotsswap
    source_slot: staging
    target_slot: production
    expected_build: "1.4.2"
    fingerprint: image
    status: Succeeded
    progress: [{elapsed_s: 0.0, status: InProgress}, {elapsed_s: 31.2, status: Succeeded}]
source_health:
  description:
    - The probe of O(source_health_url) (same shape as M(sre.rollback.health_check)'s result), also when it
      refused the swap; V(null) when no swap was about to happen or no URL was given.
  returned: always
  type: dict
  sample: {healthy: true, samples_taken: 2, successes: 2, failures: 0, duration_s: 0.51}
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import (
    FINGERPRINTS,
    WEBAPP_ARGSPEC,
    WEBAPP_LIBRARIES,
    AppServiceSlots,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.slot_swap import ACTIONS, SlotSwap, SourceHealthCheck
from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle


def main():
    module = RollbackModule(
        argument_spec=dict(
            slot=dict(type="str", required=True, aliases=["source_slot"]),
            target_slot=dict(type="str", default="production"),
            action=dict(type="str", default="swap", choices=list(ACTIONS)),
            expected_build=dict(type="str"),
            fingerprint=dict(type="str", default="image", choices=list(FINGERPRINTS)),
            fingerprint_setting=dict(type="str", default="APP_VERSION"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=900),
            source_health_url=dict(type="str"),
            source_health_samples=dict(type="int", default=2),
            source_health_interval=dict(type="float", default=0.5),
            source_health_body_match=dict(type="dict"),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, WEBAPP_ARGSPEC],
        supports_check_mode=True,
    )
    module.require_libraries(WEBAPP_LIBRARIES)
    params = module.params

    def swap():
        # Built first: bad probe options fail here, before Azure is called.
        source_check = SourceHealthCheck(
            params["source_health_url"],
            samples=params["source_health_samples"],
            interval=params["source_health_interval"],
            body_match=params["source_health_body_match"],
            verify=ca_bundle(),
        ).start() if params["source_health_url"] else None
        slots = AppServiceSlots.from_params(
            params, fingerprint=params["fingerprint"], fingerprint_setting=params["fingerprint_setting"])
        procedure = SlotSwap(
            slots,
            source=params["slot"],
            target=params["target_slot"],
            action=params["action"],
            expected_build=params["expected_build"],
            wait=params["wait"],
            wait_timeout=params["wait_timeout"],
            check_mode=module.check_mode,
            source_check=source_check,
        )
        changed, result = procedure.run()
        for warning in result.pop("warnings"):
            module.warn(warning)
        if not module.diff_mode:
            result.pop("diff")
        return changed, result

    module.run(swap)


if __name__ == "__main__":
    main()
