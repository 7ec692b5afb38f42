# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.webapp_image import (
    ContainerImage,
    image_records,
    previous_image,
    set_container_image,
)

ACR = "myacr.azurecr.io"
REPO = ACR + "/api"


def record(image, previous=None, kind="deploy", when="2025-03-01T10:00:00Z", name="dep"):
    return SimpleNamespace(name="app/" + name, start_time=when, active=False,
                           details=json.dumps({"image": image, "previous_image": previous, "kind": kind}))


def test_image_records_skip_other_deployments_and_sort_newest_first():
    deployments = [
        record(REPO + ":1.2", REPO + ":1.1", when="2025-03-01T10:00:00Z", name="a"),
        SimpleNamespace(name="app/zip", start_time="2025-03-05T10:00:00Z", active=True, details="zip deploy"),
        record(REPO + ":1.3", REPO + ":1.2", when="2025-03-02T10:00:00Z", name="b"),
    ]
    assert [r["id"] for r in image_records(deployments)] == ["b", "a"]


def test_previous_is_the_image_before_the_last_deploy():
    records = image_records([record(REPO + ":1.3", REPO + ":1.2")])
    assert previous_image(records, REPO + ":1.3") == REPO + ":1.2"


def test_previous_after_a_rollback_stays_put():
    records = image_records([
        record(REPO + ":1.3", REPO + ":1.2", when="2025-03-02T10:00:00Z"),
        record(REPO + ":1.2", REPO + ":1.3", kind="rollback", when="2025-03-03T10:00:00Z"),
    ])
    assert previous_image(records, REPO + ":1.2") == REPO + ":1.2"


def test_previous_refuses_a_history_that_does_not_explain_the_slot():
    with pytest.raises(RollbackError, match="records no image change"):
        previous_image([], REPO + ":1.3")
    records = image_records([record(REPO + ":1.3", REPO + ":1.2")])
    with pytest.raises(RollbackError, match="changed by other means"):
        previous_image(records, REPO + ":9.9")


class FakeSlots:
    """AppServiceSlots as ContainerImage uses it, recording every write."""

    def __init__(self, image, deployments=()):
        self.image = image
        self.deployments = list(deployments)
        self.writes = []
        self.resource_group, self.app = "rg", "app"
        web_apps = SimpleNamespace(list_deployments=lambda rg, app: list(reversed(self.deployments)),
                                   create_deployment=self._create)
        self.client = SimpleNamespace(web_apps=web_apps)

    def _create(self, rg, app, dep_id, body):
        self.writes.append(("deployment", dep_id))
        props = body["properties"]
        self.deployments.append(SimpleNamespace(name="app/" + dep_id, start_time=props["start_time"],
                                                active=True, details=props["details"]))

    def read_slot(self, slot):
        return SimpleNamespace(image=self.image)

    def set_image(self, slot, image):
        self.writes.append(("image", image))
        self.image = image

    def restart(self, slot):
        self.writes.append(("restart", slot))


class FakeRegistry:
    def __init__(self, tags):
        self.tags = tags
        self.lookups = []

    def require(self, image, known=None):
        self.lookups.append(image.reference)
        if image.tag not in self.tags:
            raise RollbackError("Image %s does not exist. Nothing was changed." % image.reference)
        return {"digest": "sha256:" + "0" * 64, "created_on": None, "last_updated_on": None}


def work_for(slots, registry):
    settings = SimpleNamespace(subscription_id="sub")
    return ContainerImage(slots, settings, registry=ACR, registry_factory=lambda server: registry)


def test_deploy_by_tag_then_previous_then_previous_again():
    slots, registry = FakeSlots(REPO + ":1.2"), FakeRegistry({"1.2", "1.3"})
    work = work_for(slots, registry)
    changed, result = set_container_image(work, tag="1.3")
    assert changed and result["after"]["image"] == REPO + ":1.3" and result["registry_checked"]
    changed, result = set_container_image(work, previous=True, check_mode=True)
    assert changed and result["after"]["image"] == REPO + ":1.2"
    assert [w[0] for w in slots.writes] == ["image", "deployment"]  # check mode wrote nothing
    changed, result = set_container_image(work, previous=True)
    assert changed and slots.image == REPO + ":1.2"
    changed, result = set_container_image(work, previous=True)
    assert not changed and result["deployment_id"] is None
    assert len(slots.writes) == 4


def test_missing_tag_changes_nothing():
    slots, registry = FakeSlots(REPO + ":1.2"), FakeRegistry({"1.2"})
    with pytest.raises(RollbackError, match="does not exist"):
        set_container_image(work_for(slots, registry), tag="1.3.2")
    assert slots.writes == [] and registry.lookups == [REPO + ":1.3.2"]


def test_image_outside_acr_is_set_without_lookup_and_same_image_is_unchanged():
    slots, registry = FakeSlots("registry.sandbox.local/app:1"), FakeRegistry(set())
    work = ContainerImage(slots, SimpleNamespace(subscription_id="sub"), registry_factory=lambda server: registry)
    changed, result = set_container_image(work, image="registry.sandbox.local/app:2", restart=True)
    assert changed and not result["registry_checked"] and result["restarted"]
    assert registry.lookups == []
    changed, result = set_container_image(work, image="registry.sandbox.local/app:2")
    assert not changed and result["before"] == result["after"]


def test_bad_options_fail_before_reading():
    slots = FakeSlots(REPO + ":1.2")
    with pytest.raises(RollbackError, match="tag"):
        set_container_image(work_for(slots, FakeRegistry(set())), tag="bad tag")
    with pytest.raises(RollbackError, match="wait_timeout"):
        set_container_image(work_for(slots, FakeRegistry(set())), tag="1.3", wait_timeout=0)
    assert slots.writes == []


def test_a_change_that_cannot_be_recorded_says_the_image_did_change():
    slots, registry = FakeSlots(REPO + ":1.2"), FakeRegistry({"1.3"})

    def refuse(*args):
        raise RollbackError("Recording the image change failed: HTTP 403 AuthorizationFailed")

    slots.client.web_apps.create_deployment = refuse
    with pytest.raises(RollbackError) as failure:
        set_container_image(work_for(slots, registry), tag="1.3")
    assert "now runs %s:1.3" % REPO in failure.value.message and "403" in failure.value.message
    assert failure.value.details["changed"] is True and slots.image == REPO + ":1.3"
