"""Static Web Apps through azure-mgmt-web's StaticSitesOperations, and the hosts they serve."""

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

RG = "rg-fundrbolt-sandbox"
SITE = "fundrbolt-sandbox-web"
MYSTIRA_RG = "rg-mystira-sandbox"
MYSTIRA_SITE = "mystira-sandbox-admin-ui"
BAD_COMMIT = "bad0c0de1234567890abcdef1234567890abcdef"


def served(host, path="/version.json"):
    resp = requests.get(f"https://{host}{path}", timeout=10)
    return resp.status_code, (resp.json() if path.endswith(".json") and resp.ok else resp.text)


def deploy(sbx, site, **body):
    return sbx.admin("POST", f"staticsites/{site}/deploy", body)


def test_get_and_list_static_sites(sbx, client):
    site = client.static_sites.get_static_site(RG, SITE)
    assert (site.name, site.type, site.location) == (SITE, "Microsoft.Web/staticSites", "West Europe")
    assert site.id.endswith(f"/resourceGroups/{RG}/providers/Microsoft.Web/staticSites/{SITE}")
    assert (site.repository_url, site.branch, site.provider, site.sku.name) == (
        "https://github.com/fundrbolt/fundrbolt-platform", "main", "GitHub", "Standard")
    assert site.default_hostname.startswith("127.0.0.1:")
    assert [s.name for s in client.static_sites.get_static_sites_by_resource_group(MYSTIRA_RG)] == [MYSTIRA_SITE]
    assert sorted(s.name for s in client.static_sites.list()) == [SITE, MYSTIRA_SITE]
    # App Service sites and static sites are different resource types.
    assert [s.name for s in client.web_apps.list_by_resource_group(RG)] == ["fundrbolt-sandbox-api"]


def test_builds_are_the_environments(sbx, client):
    builds = list(client.static_sites.get_static_site_builds(RG, SITE))
    assert [b.name for b in builds] == ["default", "42"]
    prod, preview = builds
    site = client.static_sites.get_static_site(RG, SITE)
    assert (prod.build_id, prod.source_branch, prod.status, prod.hostname) == (
        "default", "main", "Ready", site.default_hostname)
    assert prod.pull_request_title is None and prod.last_updated_on.isoformat() == "2025-02-17T14:30:00+00:00"
    assert (preview.build_id, preview.source_branch, preview.pull_request_title) == (
        "42", "feature/donor-export", "Add donor CSV export")
    assert preview.hostname != prod.hostname
    assert prod.type == "Microsoft.Web/staticSites/builds" and prod.id.endswith(f"/staticSites/{SITE}/builds/default")
    # The sandbox's own property: what the environment served, oldest first.
    assert [d["version"] for d in prod.properties["sandboxDeployHistory"]] == ["1.2.1", "1.2.2", "1.2.3"]
    one = client.static_sites.get_static_site_build(RG.upper(), SITE.upper(), "DEFAULT")
    assert one.hostname == prod.hostname


def test_each_environment_serves_its_build(sbx, client):
    prod = client.static_sites.get_static_site_build(RG, SITE, "default")
    status, body = served(prod.hostname)
    assert status == 200
    assert body == {"version": "1.2.3", "commit": BAD_COMMIT, "environment": "default",
                    "deployed_at": "2025-02-17T14:30:00Z"}
    status, page = served(prod.hostname, "/")
    assert status == 200 and "1.2.3" in page and BAD_COMMIT in page and page.startswith("<!doctype html>")
    preview = client.static_sites.get_static_site_build(RG, SITE, "42")
    assert served(preview.hostname)[1]["version"] == "1.3.0-pr42"
    assert served(prod.hostname, "/nope")[0] == 404


def test_deploy_hook_and_admin_route_change_what_is_served(sbx, client):
    prod = client.static_sites.get_static_site_build(RG, SITE, "default")
    record = deploy(sbx, SITE, environment="production", version="1.2.2", commit="a" * 40)
    assert (record["environment"], record["hostname"], record["source"]) == ("default", prod.hostname, "admin")
    assert served(prod.hostname)[1]["version"] == "1.2.2"
    after = client.static_sites.get_static_site_build(RG, SITE, "default")
    assert after.last_updated_on > prod.last_updated_on
    assert [d["version"] for d in after.properties["sandboxDeployHistory"]] == ["1.2.1", "1.2.2", "1.2.3", "1.2.2"]
    state = sbx.admin("GET", "staticsites")["sites"][0]
    assert state["environments"]["default"]["version"] == "1.2.2"
    assert sbx.state()["staticsites"] == sbx.admin("GET", "staticsites")

    # A deploy to an environment that does not exist creates a preview environment with its own host.
    record = deploy(sbx, SITE, environment="7", version="1.3.1-pr7", commit="b" * 40, pull_request_title="Fix")
    new = client.static_sites.get_static_site_build(RG, SITE, "7")
    assert (new.pull_request_title, new.status, new.hostname) == ("Fix", "Ready", record["hostname"])
    assert served(new.hostname)[1]["version"] == "1.3.1-pr7"

    # Reset: seed content again, host names unchanged.
    sbx.admin("POST", "reset")
    assert served(prod.hostname)[1]["version"] == "1.2.3"
    assert served(new.hostname)[0] == 404
    with pytest.raises(ResourceNotFoundError):
        client.static_sites.get_static_site_build(RG, SITE, "7")


def test_admin_deploy_rejects_bad_requests(sbx):
    url = f"{sbx.admin_url}/staticsites/{SITE}/deploy"
    assert requests.post(url, json={"environment": "default"}, timeout=10).status_code == 400
    assert requests.post(url, json={"version": "1", "colour": "red"}, timeout=10).status_code == 400
    resp = requests.post(f"{sbx.admin_url}/staticsites/no-such-site/deploy", json={"version": "1"}, timeout=10)
    assert resp.status_code == 404 and SITE in resp.json()["error"]


def test_arm_errors(sbx, client):
    with pytest.raises(ResourceNotFoundError) as err:
        client.static_sites.get_static_site(RG, "no-such-site")
    assert err.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        client.static_sites.get_static_site("rg-nope", SITE)
    assert err.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as err:
        client.static_sites.get_static_site_build(RG, SITE, "999")
    assert "builds" in err.value.error.message
    with pytest.raises(ResourceNotFoundError):
        client.static_sites.begin_delete_static_site_build(RG, SITE, "999")
    with pytest.raises(ResourceNotFoundError) as err:
        list(client.static_sites.get_static_site_builds(MYSTIRA_RG, SITE))  # right site, wrong group


def test_delete_preview_environment_is_long_running(sbx, client):
    host = client.static_sites.get_static_site_build(RG, SITE, "42").hostname
    poller = client.static_sites.begin_delete_static_site_build(RG, SITE, "42", polling_interval=0.05)
    assert client.static_sites.get_static_site_build(RG, SITE, "42").status == "Deleting"
    assert poller.result() is None and poller.status() == "Succeeded"
    assert [b.name for b in client.static_sites.get_static_site_builds(RG, SITE)] == ["default"]
    assert served(host)[0] == 404
    calls = [c for c in sbx.calls() if "operationResults" in c["path"] or c["method"] == "DELETE"]
    assert calls[0]["method"] == "DELETE" and calls[0]["status"] == 202


def test_delete_production_empties_it_until_the_next_deploy(sbx, client):
    host = client.static_sites.get_static_site(MYSTIRA_RG, MYSTIRA_SITE).default_hostname
    client.static_sites.begin_delete_static_site_build(MYSTIRA_RG, MYSTIRA_SITE, "default",
                                                       polling_interval=0.05).result()
    prod = client.static_sites.get_static_site_build(MYSTIRA_RG, MYSTIRA_SITE, "default")
    assert prod.status == "WaitingForDeployment" and prod.hostname == host
    assert served(host)[0] == 404
    deploy(sbx, MYSTIRA_SITE, version="0.8.0", commit="c" * 40)
    assert served(host)[1]["version"] == "0.8.0"
    assert client.static_sites.get_static_site_build(MYSTIRA_RG, MYSTIRA_SITE, "default").status == "Ready"


def test_failed_delete_changes_nothing(sbx, client):
    sbx.fault(kind="lro_fail", method="DELETE", path="/builds/42$")
    poller = client.static_sites.begin_delete_static_site_build(RG, SITE, "42", polling_interval=0.05)
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert err.value.error.code == "StaticSiteBuildDeleteFailed"
    build = client.static_sites.get_static_site_build(RG, SITE, "42")
    assert build.status == "Ready" and served(build.hostname)[1]["version"] == "1.3.0-pr42"


def test_throttled_read_is_retried(sbx, client):
    sbx.fault(kind="throttle", method="GET", path="/staticSites/fundrbolt-sandbox-web/builds$", retry_after=0)
    assert len(list(client.static_sites.get_static_site_builds(RG, SITE))) == 2
    statuses = [c["status"] for c in sbx.calls() if c["path"].endswith("/builds")]
    assert statuses == [429, 200]


def test_deploy_hook_contract_in_process(tmp_path):
    """The hook the GitHub stand-in calls, exercised in-process as it will be."""
    import os
    import sys

    sandbox_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if sandbox_dir not in sys.path:
        sys.path.insert(0, sandbox_dir)  # the standin package lives next to sandboxctl.py
    from standin.server import SandboxServer  # pylint: disable=import-outside-toplevel

    seed_dir = os.path.join(sandbox_dir, "seed")
    server = SandboxServer(str(tmp_path), seed_dir)
    server.main.start()  # stop() waits for the serving thread
    try:
        hook = server.sandbox.hooks["static_site_deploy"]
        record = hook(SITE, "", "1.2.2", "d" * 40)
        assert record["environment"] == "default" and record["source"] == "workflow"
        assert record["version"] == "1.2.2" and record["commit"] == "d" * 40
        provider = next(p for p in server.sandbox.providers if p.name == "staticsites")
        envs = provider.snapshot()["sites"][0]["environments"]
        assert envs["default"]["version"] == "1.2.2" and envs["default"]["history"][-1]["source"] == "workflow"
        with pytest.raises(ValueError):
            hook("no-such-site", "default", "1.0.0", "e" * 40)
        with pytest.raises(ValueError):
            hook(SITE, "default", "", "e" * 40)
    finally:
        server.stop()
