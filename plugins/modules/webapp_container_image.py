#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: webapp_container_image
short_description: Set (or roll back) the container image an Azure App Service app or slot runs
version_added: 0.1.0
description:
  - Points an App Service app (or one of its deployment slots) at a container image, the
    C(az webapp config container set --docker-custom-image-name) step of the runbooks, used to deploy a
    build into the staging slot before a swap or to roll a container back to an earlier tag.
  - The image is named in full (O(image)), as a tag of the slot's repository (O(tag)), or as the image
    the slot ran before its last deploy (O(previous)).
  - Before anything changes, an image in an Azure Container Registry is looked up there (O(verify_image));
    a tag that does not exist fails with the tags that come closest, and nothing is changed.
  - With O(list_tags) it lists the repository's tags newest first, with digests and dates, the
    C(az acr repository show-tags) step of the mystira runbook.
  - Idempotent, it changes nothing when the slot already runs the image. Supports check mode and diff
    (the image before and after).
  - Every change is recorded in the slot's deployment log (C(sites/deployments)), the only per-slot
    history App Service keeps, because App Service does not record earlier C(linuxFxVersion) values.
    O(previous) reads those records, see its description.
author:
  - sre.rollback maintainers (@sre-rollback)
extends_documentation_fragment:
  - sre.rollback.azure
  - sre.rollback.azure.webapp
options:
  slot:
    description: The slot to read or change; C(production) is the app itself.
    type: str
    default: production
  image:
    description:
      - The full image reference to run, for example C(myacr.azurecr.io/api:1.4.2) or C(myacr.azurecr.io/api@sha256:...).
      - Exclusive with O(tag) and O(previous). Without any of the three the module only reads (see O(list_tags)).
    type: str
  tag:
    description:
      - A tag of the repository the slot runs now (or of O(registry) and O(repository) when given), for example C(1.3.0).
    type: str
  previous:
    description:
      - Roll back to the image the slot ran before its last deploy, as recorded in its deployment log.
      - Every image change this module makes writes a record whose C(details) is JSON with C(image),
        C(previous_image) and C(kind) (C(deploy) or C(rollback)). When the newest record is a deploy of the
        running image, the target is its C(previous_image). When it is a rollback to the running image the
        slot is already there and nothing changes, so running the task twice does not flip back and forth;
        to go further back, name the tag.
      - Fails before any change when the log has no such records or when the slot runs an image the records
        do not explain (changed by other means).
    type: bool
    default: false
  registry:
    description:
      - The Azure Container Registry of the image, by name (C(mystiraacr), looked up in the subscription through
        Azure Resource Manager) or by login server (C(mystiraacr.azurecr.io)).
      - Default is the registry of the image the slot runs now. Images whose registry is neither an
        C(*.azurecr.io) (C(.cn), C(.us)) login server nor this registry are not looked up.
    type: str
  repository:
    description: The repository in the registry, for example C(mystira/api). Default is the one the slot runs now.
    type: str
  list_tags:
    description:
      - Return the repository's tags (RV(tags)), newest first. Alone (without O(image), O(tag) or O(previous))
        the task only reads and never changes anything.
    type: bool
    default: false
  tags_limit:
    description: How many tags O(list_tags) returns at most (the newest).
    type: int
    default: 20
  verify_image:
    description:
      - Look the image up in its Azure Container Registry before changing anything, and fail if the tag or
        digest does not exist there.
      - Needs a pull role (C(AcrPull) or C(Reader)) on the registry for the identity.
    type: bool
    default: true
  record_history:
    description: Write a deployment record for the change (what O(previous) reads later).
    type: bool
    default: true
  registry_audience:
    description:
      - The audience of the Entra ID token exchanged for a registry token. Default per O(cloud)
        (C(https://containerregistry.azure.net) for the public cloud).
    type: str
  restart:
    description:
      - Restart the slot after changing the image. App Service already restarts the container when its image
        changes; an explicit restart also restarts the other processes of the app.
    type: bool
    default: false
  health_url:
    description:
      - A URL to probe after the change until it answers with status 200 (see O(require_healthy)), or
        O(wait_timeout) passes. With O(health_version_field) it must also report the new image.
    type: str
  health_version_field:
    description:
      - The field of the JSON body of O(health_url) that names the build the app runs (a dotted path, such as
        C(version) or C(build.image)). The wait ends only when it names the new image (see O(health_version_value)).
    type: str
  health_version_value:
    description: What O(health_version_field) holds, the image's C(tag) (or digest) or the full C(image) reference.
    type: str
    choices: [tag, image]
    default: tag
  require_healthy:
    description: Whether O(health_url) must answer 200; when false any answer that reports the new image will do.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for O(health_url) after the change.
    type: int
    default: 300
notes:
  - Needs C(Microsoft.Web/sites/config/write) and C(Microsoft.Web/sites/deployments/write) (or their C(slots)
    forms) on the app, and a pull role on the registry to verify images and list tags.
  - The registry is read with azure-containerregistry, which exchanges the Entra ID token for an ACR token;
    the registry's admin user and anonymous pull are not used.
  - The CA bundle for O(health_url) is taken from E(SSL_CERT_FILE) or E(REQUESTS_CA_BUNDLE) when set.
seealso:
  - module: sre.rollback.webapp_slot_swap
  - module: sre.rollback.webapp_slot_info
requirements:
  - azure-mgmt-web >= 7.2
  - azure-containerregistry >= 1.2 (to verify images and list tags)
  - httpx (for O(health_url))
"""

EXAMPLES = r"""
- name: Deploy the new build to the staging slot (fundrbolt automatic flow, step 1)
  sre.rollback.webapp_container_image:
    resource_group: fundrbolt-production-rg
    name: fundrbolt-production-api
    slot: staging
    image: fundrboltacr.azurecr.io/fundrbolt-api:1.6.0

- name: List available images (mystira runbook, az acr repository show-tags)
  sre.rollback.webapp_container_image:
    resource_group: rg-mystira-prod
    name: mystira-app
    list_tags: true
  register: mystira_images

- name: Container image rollback to the image before the last deploy
  sre.rollback.webapp_container_image:
    resource_group: rg-mystira-prod
    name: mystira-app
    previous: true
    health_url: https://api.mystira.app/health
    health_version_field: version
    wait_timeout: 180

- name: Set a specific version (mystira runbook, az webapp config container set)
  sre.rollback.webapp_container_image:
    resource_group: rg-mystira-prod
    name: mystira-app
    registry: mystiraacr
    repository: mystira-app
    tag: v1.2.3
    restart: true
"""

RETURN = r"""
before:
  description: The image before the task.
  returned: always
  type: dict
  sample: {image: "myacr.azurecr.io/api:1.5.0"}
after:
  description: The image after the task (predicted in check mode).
  returned: always
  type: dict
  sample: {image: "myacr.azurecr.io/api:1.4.2"}
slot:
  description: The slot that was read or changed.
  returned: always
  type: str
restarted:
  description: Whether the slot was (or in check mode would be) restarted.
  returned: always
  type: bool
registry_checked:
  description: Whether the image was looked up in its registry before the change.
  returned: always
  type: bool
registry:
  description: What the registry holds for the image; null when it was not looked up.
  returned: always
  type: dict
  sample: {login_server: myacr.azurecr.io, repository: api, tag: 1.4.2, digest: "sha256:5d1f...",
           created_on: "2025-02-17T14:20:00+00:00", last_updated_on: "2025-02-17T14:20:00+00:00"}
deployment_id:
  description: The deployment record written for the change; null when nothing changed, in check mode, or
    with O(record_history=false).
  returned: always
  type: str
  sample: image-20250303T101500123456Z-1a2b3c4d
answered_after_s:
  description: Seconds until O(health_url) answered as required; null without it.
  returned: always
  type: float
tags:
  description: The repository's tags, newest first (by last update), with the image the slot runs marked.
  returned: when O(list_tags=true)
  type: dict
  contains:
    login_server:
      description: The registry's login server.
      type: str
    repository:
      description: The repository.
      type: str
    previous_image:
      description: The image O(previous) would lead to now; null when the history does not say.
      type: str
    tags:
      description: Each tag with C(name), C(image), C(digest), C(created_on), C(last_updated_on) and C(current).
      type: list
      elements: dict
history:
  description: The slot's recorded image changes, newest first (at most 10), each with C(id), C(image),
    C(previous_image), C(kind), C(time) and C(active).
  returned: when O(list_tags=true)
  type: list
  elements: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.azure_acr import ACR_AUDIENCES
from ansible_collections.sre.rollback.plugins.module_utils.azure_auth import AZURE_AUTH_ARGSPEC, AzureSettings
from ansible_collections.sre.rollback.plugins.module_utils.azure_web import (
    WEBAPP_ARGSPEC,
    WEBAPP_LIBRARIES,
    AppServiceSlots,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.webapp_image import ContainerImage, set_container_image


def main():
    module = RollbackModule(
        argument_spec=dict(
            slot=dict(type="str", default="production"),
            image=dict(type="str"),
            tag=dict(type="str"),
            previous=dict(type="bool", default=False),
            registry=dict(type="str"),
            repository=dict(type="str"),
            list_tags=dict(type="bool", default=False),
            tags_limit=dict(type="int", default=20),
            verify_image=dict(type="bool", default=True),
            record_history=dict(type="bool", default=True),
            registry_audience=dict(type="str"),
            restart=dict(type="bool", default=False),
            health_url=dict(type="str"),
            health_version_field=dict(type="str"),
            health_version_value=dict(type="str", choices=["tag", "image"], default="tag"),
            require_healthy=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=300),
        ),
        fragments=[AZURE_AUTH_ARGSPEC, WEBAPP_ARGSPEC],
        mutually_exclusive=[("image", "tag")],
        supports_check_mode=True,
    )
    module.require_libraries(WEBAPP_LIBRARIES)
    params = module.params

    def work():
        if params["previous"] and (params["image"] or params["tag"]):
            raise RollbackError("previous cannot be combined with image or tag: choose one target.")
        settings = AzureSettings.from_params(params)
        slots = AppServiceSlots.connect(settings, params["resource_group"], params["name"])
        audience = params["registry_audience"] or ACR_AUDIENCES[params["cloud"]]
        container_image = ContainerImage(slots, settings, slot=params["slot"], registry=params["registry"],
                                         repository=params["repository"], audience=audience, cloud=params["cloud"])
        changed, result = set_container_image(
            container_image, check_mode=module.check_mode, image=params["image"], tag=params["tag"],
            previous=params["previous"], restart=params["restart"], verify_image=params["verify_image"],
            record_history=params["record_history"], list_tags=params["list_tags"], tags_limit=params["tags_limit"],
            health_url=params["health_url"], health_version_field=params["health_version_field"],
            health_version_value=params["health_version_value"], require_healthy=params["require_healthy"],
            wait_timeout=params["wait_timeout"])
        if not module.diff_mode:
            result.pop("diff", None)
        return changed, result

    module.run(work)


if __name__ == "__main__":
    main()
