"""ARM template deployments through azure-mgmt-resource-deployments' DeploymentsMgmtClient.

Seed: rg-fundrbolt-sandbox ran infra-2026-11-20 (Succeeded), -21 (Failed: a P9v9 plan), -22
(Succeeded) and -23 (Succeeded: plan B1, blob public access on, a Redis cache added); the
subscription ran two resource-group deployments. The store holds what -23 left.
"""

import json
import os
import sys
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.resource.deployments import DeploymentsMgmtClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from standin.deployments import template as tpl  # noqa: E402  (the engine, tested directly below)

RG = "rg-fundrbolt-sandbox"
SEED_PASSWORD = "Sandbox-Only-Pa55word!"
NEW_PASSWORD = "Another-Pa55word!"


@pytest.fixture
def dep_sbx(sbx):
    sbx.admin("PUT", "deployments/settings", {"duration_s": 0.3})
    return sbx


@pytest.fixture(scope="session")
def dclient(sandbox):
    return DeploymentsMgmtClient(sandbox.credential(), sandbox.env["AZURE_SUBSCRIPTION_ID"], base_url=sandbox.arm,
                                 credential_scopes=[f"{sandbox.arm}/.default"], polling_interval=0.1)


def store(sbx, scope=RG):
    return {r["type"]: r for r in sbx.admin("GET", "deployments")["scopes"][scope]["resources"]}


def body_from(dclient, name, mode="Incremental", **overrides):
    """A redeploy body of a history deployment: its template and parameters, secure ones given again."""
    template = dclient.deployments.export_template(RG, name).template
    params = {k: {"value": v["value"]} for k, v in dclient.deployments.get(RG, name).properties.parameters.items()
              if "value" in v}
    params["postgresAdminPassword"] = {"value": NEW_PASSWORD}
    params.update({k: {"value": v} for k, v in overrides.items()})
    return {"properties": {"template": template, "parameters": params, "mode": mode}}


def test_history_at_resource_group_scope(dep_sbx, dclient):
    history = list(dclient.deployments.list_by_resource_group(RG))
    assert [d.name for d in history] == ["infra-2026-11-20", "infra-2026-11-21", "infra-2026-11-22", "infra-2026-11-23"]
    states = {d.name: d.properties.provisioning_state for d in history}
    assert states["infra-2026-11-21"] == "Failed" and states["infra-2026-11-22"] == "Succeeded"
    good = dclient.deployments.get(RG, "INFRA-2026-11-22")
    assert good.type == "Microsoft.Resources/deployments"
    assert good.id.endswith(f"/resourceGroups/{RG}/providers/Microsoft.Resources/deployments/infra-2026-11-22")
    assert good.properties.timestamp.isoformat() == "2026-11-22T10:02:51+00:00"
    assert good.properties.duration == "PT95.2S" and good.properties.mode == "Incremental"
    assert good.properties.template_hash.isdigit()
    assert good.properties.parameters["appServiceSku"] == {"type": "String", "value": "P1v3"}
    # A secure parameter is listed with its type and never with its value, as ARM does.
    assert good.properties.parameters["postgresAdminPassword"] == {"type": "SecureString"}
    assert good.properties.outputs["postgresFqdn"]["value"] == "psql-fundrbolt-sandbox.postgres.database.azure.com"
    assert len(good.properties.output_resources) == 3
    failed = dclient.deployments.get(RG, "infra-2026-11-21")
    assert failed.properties.error.code == "DeploymentFailed"
    assert failed.properties.error.details[0].code == "SkuNotAvailable"
    assert failed.properties.outputs is None
    raw = requests.get(f"{dep_sbx.arm}/subscriptions/{dep_sbx.env['AZURE_SUBSCRIPTION_ID']}/resourcegroups/{RG}"
                       "/providers/Microsoft.Resources/deployments?api-version=2026-06-01",
                       headers={"Authorization": "Bearer " + dep_sbx.credential().get_token(
                           f"{dep_sbx.arm}/.default").token}, timeout=10).text
    assert SEED_PASSWORD not in raw
    # $filter and $top, and check_existence (HEAD).
    assert [d.name for d in dclient.deployments.list_by_resource_group(RG, filter="provisioningState eq 'Failed'")] \
        == ["infra-2026-11-21"]
    assert len(list(dclient.deployments.list_by_resource_group(RG, top=2))) == 2
    assert dclient.deployments.check_existence(RG, "infra-2026-11-20") is True
    assert dclient.deployments.check_existence(RG, "nope") is False
    with pytest.raises(ResourceNotFoundError) as err:
        dclient.deployments.get(RG, "nope")
    assert err.value.error.code == "DeploymentNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        list(dclient.deployments.list_by_resource_group("rg-nope"))
    assert err.value.error.code == "ResourceGroupNotFound"


def test_subscription_scope_history_export_and_deploy(dep_sbx, dclient):
    names = [d.name for d in dclient.deployments.list_at_subscription_scope()]
    assert names == ["sub-fundrbolt-2026-11-19", "sub-mystira-2026-11-19"]
    sub = dclient.deployments.get_at_subscription_scope("sub-fundrbolt-2026-11-19")
    assert sub.location == "westeurope" and sub.id == (
        f"/subscriptions/{dep_sbx.env['AZURE_SUBSCRIPTION_ID']}/providers/Microsoft.Resources/deployments/"
        "sub-fundrbolt-2026-11-19")
    template = dclient.deployments.export_template_at_subscription_scope("sub-fundrbolt-2026-11-19").template
    assert template["resources"][0]["type"] == "Microsoft.Resources/resourceGroups"
    body = {"properties": {"template": template, "parameters": {"rgName": {"value": "rg-new"}}, "mode": "Incremental"}}
    with pytest.raises(HttpResponseError) as err:
        dclient.deployments.begin_create_or_update_at_subscription_scope("sub-new", body)
    assert err.value.error.code == "LocationRequired"
    body["location"] = "westeurope"
    changes = dclient.deployments.begin_what_if_at_subscription_scope("sub-new", body).result().properties.changes
    assert sorted(c.change_type for c in changes) == ["Create", "Ignore", "Ignore"]
    done = dclient.deployments.begin_create_or_update_at_subscription_scope("sub-new", body).result()
    assert done.properties.provisioning_state == "Succeeded"
    assert done.properties.outputs["resourceGroupName"]["value"] == "rg-new"
    assert "rg-new" in [r["name"] for r in dep_sbx.admin("GET", "deployments")["scopes"]["subscription"]["resources"]]


def test_what_if_is_a_diff_of_the_template_against_the_store(dep_sbx, dclient):
    body = body_from(dclient, "infra-2026-11-22")
    result = dclient.deployments.begin_what_if(RG, "preview", body).result()
    assert result.status == "Succeeded"
    by_type = {c.resource_id.split("/providers/")[1].rsplit("/", 1)[0]: c for c in result.properties.changes}
    plan = by_type["Microsoft.Web/serverfarms"]
    assert plan.change_type == "Modify"
    assert [(d.path, d.property_change_type, d.before, d.after) for d in plan.delta] == [
        ("sku.name", "Modify", "B1", "P1v3")]
    storage = by_type["Microsoft.Storage/storageAccounts"]
    assert [(d.path, d.before, d.after) for d in storage.delta] == [("properties.allowBlobPublicAccess", True, False)]
    # The password is write-only: a provider never returns it, so what-if cannot compare or show it.
    assert by_type["Microsoft.DBforPostgreSQL/flexibleServers"].change_type == "NoChange"
    assert "administratorLoginPassword" not in json.dumps(by_type["Microsoft.DBforPostgreSQL/flexibleServers"].after)
    assert by_type["Microsoft.Cache/redis"].change_type == "Ignore"
    complete = body_from(dclient, "infra-2026-11-22", mode="Complete")
    changes = dclient.deployments.begin_what_if(RG, "preview", complete).result().properties.changes
    assert {c.change_type for c in changes if "Microsoft.Cache/redis" in c.resource_id} == {"Delete"}
    # What-if changes nothing and records no deployment.
    assert store(dep_sbx)["Microsoft.Web/serverfarms"]["sku"]["name"] == "B1"
    assert len(list(dclient.deployments.list_by_resource_group(RG))) == 4


@pytest.mark.parametrize("mutate, code, fragment", [
    (lambda b: b["properties"]["parameters"].pop("postgresAdminPassword"), "InvalidTemplate",
     "template parameter 'postgresAdminPassword' at line '1' and column '1' is not provided"),
    (lambda b: b["properties"]["parameters"].update(appServiceSku={"value": 3}), "InvalidTemplate",
     "Expected 'String'. Actual 'Integer'"),
    (lambda b: b["properties"]["parameters"].update(environment={"value": "qa"}), "InvalidTemplate",
     "not part of the allowed value(s): 'sandbox,staging,production'"),
    (lambda b: b["properties"]["parameters"].update(postgresAdminPassword={"value": "short"}), "InvalidTemplate",
     "greater than or equal to '12'"),
    (lambda b: b["properties"]["parameters"].update(unknownParam={"value": 1}), "InvalidTemplate",
     "'unknownParam' in the parameters file are not valid"),
    (lambda b: b["properties"]["template"]["outputs"].update(x={"type": "string", "value": "[nope()]"}),
     "InvalidTemplate", "The template function 'nope' is not valid"),
    (lambda b: b["properties"]["parameters"].update(location={"value": "mars"}),
     "InvalidTemplateDeployment", "is not valid according to the validation procedure"),
])
def test_validation_failures_are_arm_400s_and_record_nothing(dep_sbx, dclient, mutate, code, fragment):
    body = body_from(dclient, "infra-2026-11-22")
    mutate(body)
    with pytest.raises(HttpResponseError) as err:
        dclient.deployments.begin_validate(RG, "bad", body).result()
    assert err.value.status_code == 400 and err.value.error.code == code
    assert fragment in err.value.error.message
    if code == "InvalidTemplateDeployment":
        assert err.value.error.details[0].code == "LocationNotAvailableForResourceType"
        assert "'mars' is not available" in err.value.error.details[0].message
    with pytest.raises(HttpResponseError) as err:
        dclient.deployments.begin_create_or_update(RG, "bad", body)
    assert err.value.status_code == 400 and err.value.error.code == code
    assert not dclient.deployments.check_existence(RG, "bad")


def test_validate_success_lists_the_resources(dep_sbx, dclient):
    result = dclient.deployments.begin_validate(RG, "ok", body_from(dclient, "infra-2026-11-22")).result()
    assert result.properties.provisioning_state == "Succeeded"
    assert len(result.properties.validated_resources) == 3
    assert result.properties.parameters["postgresAdminPassword"] == {"type": "SecureString"}


def test_incremental_redeploy_runs_accepted_running_succeeded_and_writes_the_store(dep_sbx, dclient):
    dep_sbx.admin("PUT", "deployments/settings", {"duration_s": 1.0})
    body = body_from(dclient, "infra-2026-11-22")
    poller = dclient.deployments.begin_create_or_update(RG, "rollback-1", body)
    first = dclient.deployments.get(RG, "rollback-1").properties.provisioning_state
    assert first in ("Accepted", "Running")
    with pytest.raises(ResourceExistsError) as err:
        dclient.deployments.begin_create_or_update(RG, "rollback-1", body)
    assert err.value.error.code == "DeploymentActive"
    seen = set()
    while not poller.done():
        seen.add(dclient.deployments.get(RG, "rollback-1").properties.provisioning_state)
        time.sleep(0.1)
    assert "Running" in seen
    done = poller.result()
    assert done.properties.provisioning_state == "Succeeded"
    assert done.properties.duration.startswith("PT") and done.properties.correlation_id
    assert done.properties.outputs["storageAccountName"]["value"].startswith("stfundrbolt")
    resources = store(dep_sbx)
    assert resources["Microsoft.Web/serverfarms"]["sku"]["name"] == "P1v3"
    assert resources["Microsoft.Storage/storageAccounts"]["properties"]["allowBlobPublicAccess"] is False
    assert "Microsoft.Cache/redis" in resources  # incremental leaves what the template does not declare
    assert "administratorLoginPassword" not in json.dumps(resources)
    names = [d.name for d in dclient.deployments.list_by_resource_group(RG)]
    assert names[-1] == "rollback-1" and len(names) == 5
    again = dclient.deployments.begin_what_if(RG, "rollback-2", body).result().properties.changes
    assert sorted(c.change_type for c in again) == ["Ignore", "NoChange", "NoChange", "NoChange"]
    ops = list(dclient.deployment_operations.list(RG, "rollback-1"))
    assert sorted(o.properties.provisioning_operation for o in ops) == ["Write", "Write", "Write"]


def test_complete_mode_deletes_what_the_template_does_not_declare(dep_sbx, dclient):
    body = body_from(dclient, "infra-2026-11-22", mode="Complete")
    dclient.deployments.begin_create_or_update(RG, "rollback-complete", body).result()
    assert "Microsoft.Cache/redis" not in store(dep_sbx)
    ops = list(dclient.deployment_operations.list(RG, "rollback-complete"))
    assert "Delete" in [o.properties.provisioning_operation for o in ops]


def test_failed_deployments_change_nothing(dep_sbx, dclient):
    body = body_from(dclient, "infra-2026-11-22", appServiceSku="P9v9")
    with pytest.raises(HttpResponseError) as err:
        dclient.deployments.begin_create_or_update(RG, "p9", body).result()
    assert err.value.error.code == "DeploymentFailed"
    failed = dclient.deployments.get(RG, "p9")
    assert failed.properties.provisioning_state == "Failed"
    assert failed.properties.error.details[0].code == "SkuNotAvailable"
    ops = {o.properties.target_resource.resource_type: o.properties.provisioning_state
           for o in dclient.deployment_operations.list(RG, "p9")}
    assert ops["Microsoft.Web/serverfarms"] == "Failed"
    assert store(dep_sbx)["Microsoft.Web/serverfarms"]["sku"]["name"] == "B1"
    # An injected failure of the operation (admin fault) ends the same way.
    dep_sbx.fault(kind="lro_fail", method="PUT", path="deployments/injected$", message="Injected: out of capacity.")
    with pytest.raises(HttpResponseError):
        dclient.deployments.begin_create_or_update(RG, "injected", body_from(dclient, "infra-2026-11-22")).result()
    injected = dclient.deployments.get(RG, "injected").properties
    assert (injected.provisioning_state, injected.error.message) == ("Failed", "Injected: out of capacity.")
    assert store(dep_sbx)["Microsoft.Web/serverfarms"]["sku"]["name"] == "B1"


def test_transient_faults_are_retried_by_the_sdk(dep_sbx, dclient):
    dep_sbx.admin("DELETE", "calls")
    dep_sbx.fault(kind="throttle", method="PUT", path="deployments/retried$", retry_after=0)
    dep_sbx.fault(kind="error", method="GET", path="operationStatuses", status=500)
    done = dclient.deployments.begin_create_or_update(RG, "retried", body_from(dclient, "infra-2026-11-22")).result()
    assert done.properties.provisioning_state == "Succeeded"
    statuses = [c["status"] for c in dep_sbx.calls() if "retried" in c["path"]]
    assert 429 in statuses and 500 in statuses


def test_reset_restores_the_seed(dep_sbx, dclient):
    dclient.deployments.begin_create_or_update(RG, "temp", body_from(dclient, "infra-2026-11-22")).result()
    dep_sbx.admin("POST", "reset")
    assert not dclient.deployments.check_existence(RG, "temp")
    assert store(dep_sbx)["Microsoft.Web/serverfarms"]["sku"]["name"] == "B1"


# -- the template engine itself -------------------------------------------------------------------------
def _ev(expr, **params):
    ctx = tpl.Context("sub-1", "tenant-1", "dep-1", {"name": "rg-1", "location": "westeurope"})
    ctx.parameters = params
    return tpl.Evaluator(ctx).value(expr)


@pytest.mark.parametrize("expr, expected", [
    ("[concat('a-', parameters('env'), '-', string(2))]", "a-prod-2"),
    ("[format('{0}.{1}', 'x', parameters('env'))]", "x.prod"),
    ("[resourceGroup().location]", "westeurope"),
    ("[subscription().subscriptionId]", "sub-1"),
    ("[resourceId('Microsoft.Web/sites/config', 'app', 'web')]",
     "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Web/sites/app/config/web"),
    ("[toLower(concat('A', 'B'))]", "ab"),
    ("[if(equals(parameters('env'), 'prod'), 'P1v3', 'B1')]", "P1v3"),
    ("['it''s']", "it's"),
    ("[[not an expression]", "[not an expression]"),
    ("[createObject('a', 1).a]", 1),
    ("[length(createArray(1, 2, 3))]", 3),
])
def test_expressions(expr, expected):
    assert _ev(expr, env="prod") == expected


def test_unique_string_is_deterministic_13_chars():
    first, second = _ev("[uniqueString(resourceGroup().id)]"), _ev("[uniqueString(resourceGroup().id)]")
    assert first == second and len(first) == 13 and first.isalnum() and first == first.lower()
    assert _ev("[uniqueString('other')]") != first
