# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.arm_deployments import (
    SECURE_MASK,
    RedeployRequest,
    arm_parameter_values,
    bicep_build_argv,
    default_deployment_name,
    duration_seconds,
    filter_history,
    last_successful,
    load_template_file,
    mask_parameters,
    newest_first,
    parameters_file_values,
    parse_timestamp,
    redeploy,
    redeploy_parameters,
    summarize_deployment,
    summarize_what_if,
    validate_deployment_name,
    what_if_diff,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

TEMPLATE = {
    "$schema": "x", "contentVersion": "1.0.0.0", "resources": [],
    "parameters": {"sku": {"type": "string", "defaultValue": "P1v3"}, "adminPassword": {"type": "securestring"},
                   "token": {"type": "secureString", "defaultValue": ""}},
}


def raw_deployment(name, state, timestamp, **props):
    base = {"provisioningState": state, "timestamp": timestamp, "duration": "PT1M30.5S", "templateHash": "123",
            "mode": "Incremental",
            "parameters": {"sku": {"type": "String", "value": "P1v3"}, "adminPassword": {"type": "SecureString"}},
            "outputs": {"fqdn": {"type": "String", "value": "db.example"}}}
    base.update(props)
    return {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/" + name,
            "name": name, "properties": base}


HISTORY = [summarize_deployment(d) for d in (
    raw_deployment("infra-20", "Succeeded", "2026-11-20T09:14:05.1234567Z"),
    raw_deployment("infra-23", "Succeeded", "2026-11-23T07:31:09Z"),
    raw_deployment("infra-21", "Failed", "2026-11-21T16:40:22Z", error={"code": "DeploymentFailed", "message": "m"}),
    raw_deployment("infra-22", "Succeeded", "2026-11-22T10:02:51Z"),
)]


def test_parse_timestamp_takes_arm_seven_digit_fractions():
    ts = parse_timestamp("2026-11-20T09:14:05.1234567Z")
    assert ts == datetime.datetime(2026, 11, 20, 9, 14, 5, 123456, tzinfo=datetime.timezone.utc)
    assert parse_timestamp(None) is None and parse_timestamp("yesterday") is None


@pytest.mark.parametrize("text, seconds", [("PT1M30.5S", 90.5), ("PT2H", 7200), ("P1DT1S", 86401), ("PT0.12S", 0.12),
                                           ("", None), (None, None), ("bogus", None)])
def test_duration_seconds(text, seconds):
    assert duration_seconds(text) == seconds


def test_secure_parameters_are_masked_and_named():
    masked = mask_parameters({"sku": {"type": "String", "value": "B1"}, "pw": {"type": "SecureString"},
                              "obj": {"type": "SecureObject", "value": {"leak": 1}}})
    assert masked == {"sku": "B1", "pw": SECURE_MASK, "obj": SECURE_MASK}
    entry = HISTORY[0]
    assert entry["secure_parameters"] == ["adminPassword"]
    assert entry["duration_s"] == 90.5 and entry["outputs"] == {"fqdn": "db.example"}


def test_newest_first_and_filters():
    assert [d["name"] for d in newest_first(HISTORY)] == ["infra-23", "infra-22", "infra-21", "infra-20"]
    assert [d["name"] for d in filter_history(HISTORY, state="failed")] == ["infra-21"]
    assert [d["name"] for d in filter_history(HISTORY, name="INFRA-22")] == ["infra-22"]


def test_last_successful_exclude_and_before():
    assert last_successful(HISTORY)["name"] == "infra-23"
    assert last_successful(HISTORY, exclude=["infra-23"])["name"] == "infra-22"
    # "before" skips the named deployment and everything newer, and the failed one in between.
    assert last_successful(HISTORY, before="infra-23")["name"] == "infra-22"
    assert last_successful(HISTORY, before="infra-22")["name"] == "infra-20"
    assert last_successful(HISTORY, before="infra-20") is None
    with pytest.raises(RollbackError, match="not in the deployment history"):
        last_successful(HISTORY, before="nope")


def test_redeploy_parameters_keep_source_values_and_require_secure_ones():
    source = {"sku": {"type": "String", "value": "B1"}, "adminPassword": {"type": "SecureString"}}
    params, missing = redeploy_parameters(TEMPLATE, source, {}, {})
    assert params == {"sku": {"value": "B1"}} and missing == ["adminPassword"]
    params, missing = redeploy_parameters(TEMPLATE, source, arm_parameter_values({"SKU": "P1v3"}),
                                          arm_parameter_values({"adminpassword": "s3cret"}))
    assert params == {"sku": {"value": "P1v3"}, "adminPassword": {"value": "s3cret"}} and missing == []
    with pytest.raises(RollbackError, match="not declared by the template: typo"):
        redeploy_parameters(TEMPLATE, source, {"typo": {"value": 1}}, {})


def test_parameter_shapes():
    assert arm_parameter_values({"a": 1, "b": {"value": 2}, "c": {"x": 1, "y": 2}}) == {
        "a": {"value": 1}, "b": {"value": 2}, "c": {"value": {"x": 1, "y": 2}}}
    arm_file = {"$schema": "s", "contentVersion": "1.0.0.0", "parameters": {"sku": {"value": "B1"}}}
    assert parameters_file_values(arm_file) == {"sku": {"value": "B1"}}
    assert parameters_file_values({"sku": "B1"}) == {"sku": {"value": "B1"}}
    with pytest.raises(RollbackError):
        parameters_file_values(["not", "an", "object"])


def test_what_if_summary_counts_and_changes():
    changes = [
        {"resourceId": "/a", "changeType": "Modify", "before": {"sku": "B1"}, "after": {"sku": "P1v3"},
         "delta": [{"path": "sku", "propertyChangeType": "Modify", "before": "B1", "after": "P1v3"}]},
        {"resourceId": "/b", "changeType": "NoChange"},
        {"resourceId": "/c", "changeType": "Ignore"},
        {"resourceId": "/d", "changeType": "Create", "after": {"x": 1}},
    ]
    summary = summarize_what_if(changes)
    assert (summary["modify"], summary["create"], summary["no_change"], summary["ignore"], summary["delete"]) == (1, 1, 1, 1, 0)
    assert summary["has_changes"] is True
    assert summary["changes"][0]["delta"] == [{"path": "sku", "change_type": "Modify", "before": "B1", "after": "P1v3"}]
    assert what_if_diff(changes) == {"before": {"/a": {"sku": "B1"}, "/d": None},
                                     "after": {"/a": {"sku": "P1v3"}, "/d": {"x": 1}}}
    assert summarize_what_if(changes[1:3])["has_changes"] is False


def test_default_deployment_name_fits_arm_rules():
    now = datetime.datetime(2026, 11, 23, 19, 5, 7, tzinfo=datetime.timezone.utc)
    assert default_deployment_name("infra-2026-11-22", now) == "rollback-infra-2026-11-22-20261123190507"
    long_name = default_deployment_name("x" * 80 + " bad/chars", now)
    assert len(long_name) <= 64 and long_name.endswith("-20261123190507")
    validate_deployment_name(long_name)
    with pytest.raises(RollbackError):
        validate_deployment_name("has space")


def test_bicep_argv_and_build(tmp_path):
    bicep_file = tmp_path / "main.bicep"
    bicep_file.write_text("param x string\n")
    assert bicep_build_argv("/opt/bicep", str(bicep_file)) == ["/opt/bicep", "build", str(bicep_file), "--stdout"]
    seen = {}

    def run(argv, **kwargs):
        seen["argv"], seen["kwargs"] = argv, kwargs
        return SimpleNamespace(returncode=0, stdout=json.dumps(TEMPLATE), stderr="")

    assert load_template_file(str(bicep_file), which=lambda name: "/opt/bicep", run=run) == TEMPLATE
    assert seen["argv"] == ["/opt/bicep", "build", str(bicep_file), "--stdout"]
    assert seen["kwargs"]["check"] is False

    def failing(argv, **kwargs):
        return SimpleNamespace(returncode=1, stdout="", stderr="Error BCP018: expected '='")

    with pytest.raises(RollbackError, match="BCP018"):
        load_template_file(str(bicep_file), which=lambda name: "/opt/bicep", run=failing)
    with pytest.raises(RollbackError, match="needs the bicep CLI on PATH"):
        load_template_file(str(bicep_file), which=lambda name: None)


def test_template_file_errors(tmp_path):
    with pytest.raises(RollbackError, match="does not exist"):
        load_template_file(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(RollbackError, match="not valid JSON"):
        load_template_file(str(broken))
    not_arm = tmp_path / "other.json"
    not_arm.write_text("{}")
    with pytest.raises(RollbackError, match="not an ARM template"):
        load_template_file(str(not_arm))


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "exactly one source"),
    (dict(deployment_name="a", last_successful=True), "exactly one source"),
    (dict(deployment_name="a", before="b"), "before applies to last_successful"),
    (dict(deployment_name="a", parameters_file="p.json"), "parameters_file applies to template_file"),
    (dict(last_successful=True, mode="complete"), "allow_complete_mode"),
    (dict(last_successful=True, wait_timeout=0), "wait_timeout"),
    (dict(last_successful=True, new_name="bad name"), "not valid"),
])
def test_request_checks(kwargs, message):
    with pytest.raises(RollbackError, match=message):
        RedeployRequest(**kwargs).check()


class FakeDeployments:
    """The ArmDeployments surface redeploy() uses, over in-memory data (the SDK side is tested in the sandbox)."""

    resource_group = "rg"
    scope_text = "resource group 'rg'"

    def __init__(self, changes):
        self.changes = changes
        self.calls = []

    def history(self):
        return list(HISTORY)

    def export_template(self, name):
        self.calls.append(("export", name))
        return TEMPLATE

    def get_raw(self, name):
        return raw_deployment(name, "Succeeded", "2026-11-22T10:02:51Z")

    def validate(self, name, body, timeout_s):
        self.calls.append(("validate", name))

    def what_if(self, name, body, timeout_s):
        self.calls.append(("what_if", name))
        return self.changes

    def deploy(self, name, body, timeout_s):
        self.calls.append(("deploy", name, body))
        return summarize_deployment(raw_deployment(name, "Succeeded", "2026-11-23T20:00:00Z")), []


MODIFY = [{"resourceId": "/a", "changeType": "Modify", "delta": []}]
NO_CHANGE = [{"resourceId": "/a", "changeType": "NoChange"}, {"resourceId": "/b", "changeType": "Ignore"}]
NOW = datetime.datetime(2026, 11, 23, 20, 0, 0, tzinfo=datetime.timezone.utc)


def request(**kwargs):
    base = dict(last_successful=True, before="infra-23", secure_parameters={"adminPassword": "s3cret"})
    base.update(kwargs)
    return RedeployRequest(**base)


def test_redeploy_validates_previews_then_deploys_the_previous_good_one():
    fake = FakeDeployments(MODIFY)
    changed, result = redeploy(fake, request(), now=NOW)
    assert changed is True and result["source_name"] == "infra-22"
    assert result["deployment_name"] == "rollback-infra-22-20261123200000"
    assert [c[0] for c in fake.calls] == ["export", "validate", "what_if", "deploy"]
    body = fake.calls[-1][2]
    assert body["properties"]["mode"] == "Incremental"
    assert body["properties"]["parameters"] == {"sku": {"value": "P1v3"}, "adminPassword": {"value": "s3cret"}}
    assert "s3cret" not in json.dumps(result)


def test_check_mode_and_no_change_never_deploy():
    fake = FakeDeployments(MODIFY)
    changed, result = redeploy(fake, request(), check_mode=True, diff_mode=True, now=NOW)
    assert changed is True and result["deployment"] is None and "diff" in result
    assert "deploy" not in [c[0] for c in fake.calls]
    fake = FakeDeployments(NO_CHANGE)
    changed, result = redeploy(fake, request(), now=NOW)
    assert changed is False and "no change" in result["msg"]
    assert "deploy" not in [c[0] for c in fake.calls]
    changed, result = redeploy(fake, request(force=True), now=NOW)
    assert changed is True and fake.calls[-1][0] == "deploy"


def test_redeploy_refuses_before_any_call():
    fake = FakeDeployments(MODIFY)
    with pytest.raises(RollbackError, match="adminPassword") as err:
        redeploy(fake, request(secure_parameters={}), now=NOW)
    assert err.value.details["missing_secure_parameters"] == ["adminPassword"]
    with pytest.raises(RollbackError, match="ended Failed"):
        redeploy(fake, request(last_successful=False, before=None, deployment_name="infra-21"), now=NOW)
    with pytest.raises(RollbackError, match="infra-23, infra-22, infra-21, infra-20"):
        redeploy(fake, request(last_successful=False, before=None, deployment_name="infra-01"), now=NOW)
    assert [c[0] for c in fake.calls if c[0] in ("validate", "what_if", "deploy")] == []
