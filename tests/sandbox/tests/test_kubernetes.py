"""The Kubernetes API server stand-in, driven by the real `kubernetes` Python client.

The client is configured only from the kubeconfig the sandbox writes (SRE_SANDBOX_KUBECONFIG), as a
user's would be. Controller timings are shortened through the admin settings so rollouts take
fractions of a second.
"""

import json
import time

import pytest
import requests
import urllib3
from kubernetes import client as k8s, config as k8s_config, watch as k8s_watch
from kubernetes.client.exceptions import ApiException

NS = "mystira"
STORY = "mystira-storygenerator"
REPO = "mystiraacr.azurecr.io/mystira-storygenerator"
BAD_IMAGE = f"{REPO}:v1.3.0-broken"


class Kube:
    """Admin helpers and API clients for one test."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.env = sandbox.env
        self.api_client = k8s_config.new_client_from_config(config_file=self.env["SRE_SANDBOX_KUBECONFIG"])
        self.core = k8s.CoreV1Api(self.api_client)
        self.apps = k8s.AppsV1Api(self.api_client)

    def admin(self, method, path, body=None):
        return self.sandbox.admin(method, f"kubernetes/{path}" if path else "kubernetes", body)

    def fault(self, **spec):
        return self.admin("POST", "faults", spec)

    def wait(self, predicate, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def deployment(self, name=STORY):
        return self.apps.read_namespaced_deployment(name, NS)

    def rollout_done(self, name=STORY):
        def done():
            dep = self.deployment(name)
            st = dep.status
            return (dep.metadata.generation == st.observed_generation and st.updated_replicas == dep.spec.replicas
                    and st.available_replicas == dep.spec.replicas and st.replicas == dep.spec.replicas) and dep
        return self.wait(done, what=f"rollout of {name}")

    def replicasets(self, name=STORY):
        dep = self.deployment(name)
        items = self.apps.list_namespaced_replica_set(NS, label_selector=f"app.kubernetes.io/name={name}").items
        owned = [rs for rs in items if any(ref.uid == dep.metadata.uid for ref in rs.metadata.owner_references or [])]
        return {int(rs.metadata.annotations["deployment.kubernetes.io/revision"]): rs for rs in owned}

    def set_image(self, name, container, image, kind="deployment"):
        patch = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
        getattr(self.apps, f"patch_namespaced_{kind}")(name, NS, patch)


@pytest.fixture
def kube(sandbox):
    sandbox.admin("POST", "reset")
    kube = Kube(sandbox)
    kube.admin("PUT", "settings", {"pod_ready_delay_s": 0.2, "controller_tick_s": 0.05})
    yield kube
    kube.api_client.close()


def test_kubeconfig_env_and_discovery(kube):
    env = kube.env
    assert "KUBECONFIG" not in env
    assert env["SRE_SANDBOX_K8S_URL"].startswith("https://127.0.0.1:")
    version = k8s.VersionApi(kube.api_client).get_code()
    assert (version.major, version.minor) == ("1", "32")
    assert k8s.CoreApi(kube.api_client).get_api_versions().versions == ["v1"]
    groups = {g.name for g in k8s.ApisApi(kube.api_client).get_api_versions().groups}
    assert "apps" in groups
    resources = {r.name: r for r in kube.apps.get_api_resources().resources}
    assert resources["deployments/scale"].kind == "Scale" and resources["deployments/scale"].group == "autoscaling"
    assert "deploy" in resources["deployments"].short_names


def test_aggregated_discovery_when_asked_legacy_otherwise(kube):
    url, ca = kube.env["SRE_SANDBOX_K8S_URL"], kube.env["REQUESTS_CA_BUNDLE"]
    auth = {"Authorization": f"Bearer {kube.env['SRE_SANDBOX_K8S_TOKEN']}"}
    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    resp = requests.get(f"{url}/apis", headers={**auth, "Accept": aggregated}, verify=ca, timeout=10)
    assert resp.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    apps = next(g for g in resp.json()["items"] if g["metadata"]["name"] == "apps")
    deployments = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    scale = next(s for s in deployments["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    # A client that does not ask (or a server set to legacy) gets the APIGroupList.
    assert requests.get(f"{url}/apis", headers=auth, verify=ca, timeout=10).json()["kind"] == "APIGroupList"
    kube.admin("PUT", "settings", {"aggregated_discovery": 0})
    legacy = requests.get(f"{url}/apis", headers={**auth, "Accept": aggregated}, verify=ca, timeout=10)
    assert legacy.json()["kind"] == "APIGroupList" and legacy.headers["Content-Type"] == "application/json"


def test_wrong_token_is_401_status(kube):
    url = kube.env["SRE_SANDBOX_K8S_URL"]
    resp = requests.get(f"{url}/api/v1/namespaces", headers={"Authorization": "Bearer nope"},
                        verify=kube.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert resp.status_code == 401
    assert resp.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    # Anonymous users may read the version, as on a real cluster.
    assert requests.get(f"{url}/version", verify=kube.env["REQUESTS_CA_BUNDLE"], timeout=10).status_code == 200


def test_configmap_crud_conflict_and_status_bodies(kube):
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="rollback-notes", labels={"team": "sre"}),
                           data={"a": "1"})
    created = kube.core.create_namespaced_config_map(NS, body)
    assert created.metadata.uid and created.metadata.creation_timestamp
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map(NS, body)
    assert err.value.status == 409 and '"reason":"AlreadyExists"' in err.value.body.replace(" ", "")
    stale_rv = created.metadata.resource_version
    created.data = {"a": "2"}
    updated = kube.core.replace_namespaced_config_map("rollback-notes", NS, created)
    assert int(updated.metadata.resource_version) > int(stale_rv)
    # A no-op update keeps the resourceVersion.
    same = kube.core.replace_namespaced_config_map("rollback-notes", NS, updated)
    assert same.metadata.resource_version == updated.metadata.resource_version
    created.metadata.resource_version = stale_rv
    with pytest.raises(ApiException) as err:
        kube.core.replace_namespaced_config_map("rollback-notes", NS, created)
    assert err.value.status == 409
    assert 'Operation cannot be fulfilled on configmaps \\"rollback-notes\\": the object has been modified' \
        in err.value.body
    kube.core.delete_namespaced_config_map("rollback-notes", NS)
    with pytest.raises(ApiException) as err:
        kube.core.read_namespaced_config_map("rollback-notes", NS)
    assert err.value.status == 404 and 'configmaps \\"rollback-notes\\" not found' in err.value.body
    with pytest.raises(ApiException) as err:
        kube.core.create_namespaced_config_map("no-such-namespace", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="x")))
    assert err.value.status == 404 and 'namespaces \\"no-such-namespace\\" not found' in err.value.body


def test_invalid_deployment_is_422_with_causes(kube):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "broken"},
           "spec": {"selector": {"matchLabels": {"app": "x"}},
                    "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c"}]}}}}
    with pytest.raises(ApiException) as err:
        kube.apps.create_namespaced_deployment(NS, dep)
    assert err.value.status == 422
    body = err.value.body
    assert json.loads(body)["reason"] == "Invalid"
    assert "spec.template.spec.containers[0].image" in body and "selector` does not match template `labels`" in body
    assert kube.apps.list_namespaced_deployment(NS, field_selector="metadata.name=broken").items == []


def test_label_and_field_selectors(kube):
    pods = kube.core.list_namespaced_pod(NS, label_selector="app.kubernetes.io/name in (mystira-chain,mystira-publisher)")
    names = {p.metadata.labels["app.kubernetes.io/name"] for p in pods.items}
    assert names == {"mystira-chain", "mystira-publisher"} and len(pods.items) == 3
    not_story = kube.apps.list_namespaced_deployment(NS, label_selector=f"app.kubernetes.io/name!={STORY}")
    assert STORY not in {d.metadata.name for d in not_story.items} and len(not_story.items) == 3
    assert kube.apps.list_namespaced_deployment(NS, label_selector="!app.kubernetes.io/name").items == []
    one = kube.apps.list_deployment_for_all_namespaces(field_selector=f"metadata.name={STORY},metadata.namespace={NS}")
    assert [d.metadata.name for d in one.items] == [STORY]
    with pytest.raises(ApiException) as err:
        kube.apps.list_namespaced_deployment(NS, field_selector="spec.replicas=2")
    assert err.value.status == 400 and "field label not supported" in err.value.body
    page = kube.core.list_namespaced_pod(NS, limit=4)
    assert len(page.items) == 4 and page.metadata._continue
    rest = kube.core.list_namespaced_pod(NS, limit=100, _continue=page.metadata._continue)
    assert len(page.items) + len(rest.items) == len(kube.core.list_namespaced_pod(NS).items)


def test_watch_streams_changes_and_expires_old_versions(kube):
    listing = kube.apps.list_namespaced_deployment(NS, field_selector=f"metadata.name={STORY}")
    watcher = k8s_watch.Watch()
    kube.apps.patch_namespaced_deployment(STORY, NS, {"metadata": {"annotations": {"note": "watched"}}})
    seen = []
    for event in watcher.stream(kube.apps.list_namespaced_deployment, NS, field_selector=f"metadata.name={STORY}",
                                resource_version=listing.metadata.resource_version, timeout_seconds=5):
        seen.append((event["type"], event["object"].metadata.annotations.get("note")))
        if event["object"].metadata.annotations.get("note") == "watched":
            watcher.stop()
    assert ("MODIFIED", "watched") in seen
    # Without a resourceVersion the watch starts with the current state as ADDED events.
    first = next(iter(k8s_watch.Watch().stream(kube.apps.list_namespaced_deployment, NS, timeout_seconds=2)))
    assert first["type"] == "ADDED"
    resp = requests.get(f"{kube.env['SRE_SANDBOX_K8S_URL']}/apis/apps/v1/namespaces/{NS}/deployments",
                        params={"watch": "1", "resourceVersion": "1", "timeoutSeconds": "2"},
                        headers={"Authorization": f"Bearer {kube.env['SRE_SANDBOX_K8S_TOKEN']}"},
                        verify=kube.env["REQUESTS_CA_BUNDLE"], timeout=10)
    error = json.loads(resp.text.splitlines()[0])
    assert error["type"] == "ERROR" and (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")


def test_strategic_merge_patch_merges_containers_by_name(kube):
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "storygenerator", "env": [{"name": "MODE", "value": "safe"}]},
        {"name": "sidecar", "image": "busybox:1.36"}]}}}}
    dep = kube.apps.patch_namespaced_deployment(STORY, NS, patch)
    containers = {c.name: c for c in dep.spec.template.spec.containers}
    assert containers["storygenerator"].image == f"{REPO}:v1.2.0"
    assert containers["storygenerator"].env[0].value == "safe"
    assert containers["sidecar"].termination_message_path == "/dev/termination-log"  # server defaults applied
    removed = kube.apps.patch_namespaced_deployment(STORY, NS, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "storygenerator"}],
        "containers": [{"name": "sidecar", "$patch": "delete"}]}}}})
    assert [c.name for c in removed.spec.template.spec.containers] == ["storygenerator"]
    replaced = kube.apps.patch_namespaced_deployment(STORY, NS, {"spec": {"strategy": {
        "$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}})
    assert replaced.spec.strategy.type == "Recreate" and replaced.spec.strategy.rolling_update is None


def test_json_and_merge_patches(kube):
    dep = kube.apps.patch_namespaced_deployment(STORY, NS, [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 3}])
    assert dep.spec.replicas == 3
    with pytest.raises(ApiException) as err:
        kube.apps.patch_namespaced_deployment(STORY, NS, [{"op": "test", "path": "/spec/replicas", "value": 2}])
    assert err.value.status == 422
    kube.apps.patch_namespaced_deployment(STORY, NS, {"metadata": {"annotations": {"a": "1", "b": "2"}}},
                                          _content_type="application/merge-patch+json")
    dep = kube.apps.patch_namespaced_deployment(STORY, NS, {"metadata": {"annotations": {"a": None}}},
                                                _content_type="application/merge-patch+json")
    assert "a" not in dep.metadata.annotations and dep.metadata.annotations["b"] == "2"
    generation = dep.metadata.generation
    dep = kube.apps.patch_namespaced_deployment(STORY, NS, {"metadata": {"labels": {"tier": "api"}}})
    assert dep.metadata.generation == generation  # metadata changes do not bump generation


def test_server_side_apply_owns_and_prunes_fields(kube):
    def apply(manager, data, force=None):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "helm-owned"}, "data": data}
        return kube.core.patch_namespaced_config_map("helm-owned", NS, body, field_manager=manager, force=force,
                                                     _content_type="application/apply-patch+yaml")

    first = apply("helm", {"a": "1", "b": "2"})
    assert first.data == {"a": "1", "b": "2"}
    assert [(m.manager, m.operation) for m in first.metadata.managed_fields] == [("helm", "Apply")]
    second = apply("helm", {"a": "1"})
    assert second.data == {"a": "1"}  # b was helm's and helm no longer applies it
    with pytest.raises(ApiException) as err:
        apply("other", {"a": "changed"})
    assert err.value.status == 409 and 'conflict with \\"helm\\"' in err.value.body
    forced = apply("other", {"a": "changed"}, force=True)
    assert forced.data == {"a": "changed"}


def test_new_template_gets_new_replicaset_and_next_revision(kube):
    kube.apps.patch_namespaced_deployment(STORY, NS, {"metadata": {"annotations": {
        "kubernetes.io/change-cause": "release v1.3.0"}}})
    kube.set_image(STORY, "storygenerator", f"{REPO}:v1.3.0")
    dep = kube.rollout_done()
    rss = kube.replicasets()
    assert sorted(rss) == [1, 2, 3, 4]
    new = rss[4]
    assert new.spec.replicas == 2 and all(rs.spec.replicas == 0 for rev, rs in rss.items() if rev != 4)
    pod_hash = new.metadata.labels["pod-template-hash"]
    assert new.metadata.name == f"{STORY}-{pod_hash}"
    assert new.metadata.annotations["kubernetes.io/change-cause"] == "release v1.3.0"
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "4"
    progressing = {c.type: c for c in dep.status.conditions}["Progressing"]
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")
    pods = kube.core.list_namespaced_pod(NS, label_selector=f"pod-template-hash={pod_hash}").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    reasons = [e.reason for e in kube.core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={STORY}").items]
    assert "ScalingReplicaSet" in reasons


def test_undo_by_template_patch_reuses_old_replicaset_with_next_revision(kube):
    rss = kube.replicasets()
    template = kube.api_client.sanitize_for_serialization(rss[2].spec.template)
    del template["metadata"]["labels"]["pod-template-hash"]
    kube.apps.patch_namespaced_deployment(STORY, NS, [{"op": "replace", "path": "/spec/template", "value": template}],
                                          _content_type="application/json-patch+json")
    kube.rollout_done()
    after = kube.replicasets()
    assert sorted(after) == [1, 3, 4]
    assert after[4].metadata.name == rss[2].metadata.name
    assert after[4].metadata.annotations["deployment.kubernetes.io/revision-history"] == "2"
    assert kube.deployment().spec.template.spec.containers[0].image == f"{REPO}:v1.1.0"


def test_bad_image_stalls_until_progress_deadline(kube):
    kube.apps.patch_namespaced_deployment(STORY, NS, {"spec": {"progressDeadlineSeconds": 1}})
    kube.set_image(STORY, "storygenerator", BAD_IMAGE)

    def stalled():
        conditions = {c.type: c for c in kube.deployment().status.conditions or []}
        return conditions["Progressing"].reason == "ProgressDeadlineExceeded" and conditions["Progressing"]
    progressing = kube.wait(stalled, timeout=10, what="ProgressDeadlineExceeded")
    assert progressing.status == "False" and "has timed out progressing" in progressing.message
    dep = kube.deployment()
    assert dep.status.available_replicas >= 1 and dep.status.unavailable_replicas >= 1
    bad = kube.core.list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={STORY}").items
    waiting = [p for p in bad if p.spec.containers[0].image == BAD_IMAGE]
    assert waiting and waiting[0].status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    # Marking the image good lets the stuck pods become ready: the rollout completes.
    kube.admin("POST", "images", {"image": BAD_IMAGE, "bad": False})
    kube.rollout_done()


def test_revision_history_limit(kube):
    assert sorted(kube.replicasets("mystira-legacy-worker")) == [2]
    kube.apps.patch_namespaced_deployment("mystira-chain", NS, {"spec": {"revisionHistoryLimit": 1}})
    kube.set_image("mystira-chain", "chain", "mystiraacr.azurecr.io/mystira-chain:v1.3.0")
    kube.rollout_done("mystira-chain")
    assert kube.wait(lambda: sorted(kube.replicasets("mystira-chain")) == [3, 4], what="history cleanup")


@pytest.mark.parametrize("kind,name,container,old_tag", [
    ("stateful_set", "mystira-eventstore", "eventstore", "v2.1.0"),
    ("daemon_set", "mystira-log-agent", "agent", "v3.1.0"),
])
def test_controller_revisions_and_undo_by_revision_data(kube, kind, name, container, old_tag):
    read = getattr(kube.apps, f"read_namespaced_{kind}")
    obj = read(name, NS)
    revisions = kube.apps.list_namespaced_controller_revision(NS, label_selector=f"app.kubernetes.io/name={name}").items
    by_number = {r.revision: r for r in revisions}
    assert sorted(by_number) == [1, 2, 3]
    data = by_number[2].data
    assert data["spec"]["template"]["$patch"] == "replace"
    assert data["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{old_tag}")
    assert all(ref.uid == obj.metadata.uid for r in revisions for ref in r.metadata.owner_references)
    # What kubectl rollout undo sends for these kinds: the revision's data as a strategic merge patch.
    getattr(kube.apps, f"patch_namespaced_{kind}")(name, NS, data)

    def rolled():
        o = read(name, NS)
        st = o.status
        if kind == "stateful_set":
            done = st.update_revision == st.current_revision and st.updated_replicas == o.spec.replicas \
                and st.ready_replicas == o.spec.replicas
        else:
            done = st.updated_number_scheduled == st.desired_number_scheduled == st.number_available
        return done and st.observed_generation == o.metadata.generation and o
    rolled_obj = kube.wait(rolled, what=f"{name} rollout")
    after = {r.revision: r for r in kube.apps.list_namespaced_controller_revision(
        NS, label_selector=f"app.kubernetes.io/name={name}").items}
    assert sorted(after) == [1, 3, 4] and after[4].metadata.name == by_number[2].metadata.name
    if kind == "stateful_set":
        assert rolled_obj.status.update_revision == by_number[2].metadata.name
    pods = kube.core.list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={name}").items
    assert pods and all(p.spec.containers[0].image.endswith(f":{old_tag}") for p in pods)


def test_scale_subresource(kube):
    scale = kube.apps.read_namespaced_deployment_scale(STORY, NS)
    assert scale.spec.replicas == 2 and scale.status.selector == f"app.kubernetes.io/name={STORY}"
    kube.apps.patch_namespaced_deployment_scale(STORY, NS, {"spec": {"replicas": 4}})
    dep = kube.rollout_done()
    assert dep.status.ready_replicas == 4


def test_faults_throttle_error_conflict_slow_timeout(kube):
    # urllib3 (under the client) retries an idempotent GET after Retry-After: the read just takes longer.
    kube.fault(kind="throttle", path=f"/deployments/{STORY}$", retry_after=1, count=1)
    started = time.monotonic()
    kube.deployment()
    assert time.monotonic() - started >= 1
    # A PATCH is not retried: the caller sees the 429 Status and its Retry-After.
    kube.fault(kind="throttle", path=f"/deployments/{STORY}$", method="PATCH", retry_after=2, count=1)
    with pytest.raises(ApiException) as err:
        kube.apps.patch_namespaced_deployment(STORY, NS, {"metadata": {"annotations": {"x": "1"}}})
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "2"
    assert json.loads(err.value.body)["reason"] == "TooManyRequests"
    assert "x" not in (kube.deployment().metadata.annotations or {})
    kube.fault(kind="error", path=f"/deployments/{STORY}$", count=1)
    with pytest.raises(ApiException) as err:
        kube.deployment()
    assert err.value.status == 500 and "InternalError" in err.value.body
    kube.fault(kind="conflict", path=f"/deployments/{STORY}$", method="PUT", count=1)
    dep = kube.deployment()
    dep.metadata.annotations["tried"] = "1"
    with pytest.raises(ApiException) as err:
        kube.apps.replace_namespaced_deployment(STORY, NS, dep)
    assert err.value.status == 409 and "the object has been modified" in err.value.body
    kube.apps.replace_namespaced_deployment(STORY, NS, kube.deployment())  # the retry with a fresh read passes
    kube.fault(kind="slow", path=f"/deployments/{STORY}$", delay_s=0.5, count=1)
    started = time.monotonic()
    kube.deployment()
    assert time.monotonic() - started >= 0.5
    # urllib3 retries a dropped GET three times; the fourth drop reaches the caller.
    kube.fault(kind="timeout", path=f"/deployments/{STORY}$", delay_s=0.1, count=4)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        kube.apps.read_namespaced_deployment(STORY, NS, _request_timeout=5)
    assert kube.admin("GET", "faults")["faults"] == []
    calls = kube.admin("GET", "calls")["calls"]
    assert {c["fault"] for c in calls} >= {"throttle", "error", "slow", "timeout"}


def test_fleet_route_and_reset(kube):
    started = time.monotonic()
    fleet = kube.admin("POST", "fleet", {"namespace": "fleet", "count": 20, "revisions": 2, "prefix": "bench"})
    assert time.monotonic() - started < 10
    assert len(fleet["deployments"]) == 20 and fleet["images"][1].endswith(":v1.1.0")
    deps = kube.apps.list_namespaced_deployment("fleet").items
    assert len(deps) == 20
    assert all(d.status.available_replicas == 1 and d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
               for d in deps)
    kube.sandbox.admin("POST", "reset")
    assert kube.apps.list_namespaced_deployment("fleet").items == []
    assert kube.admin("GET", "settings")["pod_ready_delay_s"] == 1.0


def test_server_side_apply_creates_a_deployment_the_controller_rolls_out(kube):
    def apply(image):
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "helm-web", "namespace": "default"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "helm-web"}},
                         "template": {"metadata": {"labels": {"app": "helm-web"}},
                                      "spec": {"containers": [{"name": "web", "image": image}]}}}}
        return kube.apps.patch_namespaced_deployment("helm-web", "default", body, field_manager="helm", force=True,
                                                     _content_type="application/apply-patch+yaml")

    def rolled_out():
        dep = kube.apps.read_namespaced_deployment("helm-web", "default")
        st = dep.status
        return (st.observed_generation == dep.metadata.generation and st.available_replicas == 1
                and st.updated_replicas == 1 and st.replicas == 1) and dep

    created = apply("nginx:1.26")
    assert created.metadata.generation == 1 and created.spec.strategy.type == "RollingUpdate"
    updated = apply("nginx:1.27")
    assert updated.metadata.generation == 2
    dep = kube.wait(rolled_out, what="helm-web rollout")
    assert dep.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    # Applying the same configuration again writes nothing.
    assert apply("nginx:1.27").metadata.resource_version == dep.metadata.resource_version


def test_dry_run_and_status_subresource(kube):
    before = kube.deployment()
    dry = kube.apps.patch_namespaced_deployment(STORY, NS, {"spec": {"replicas": 5}}, dry_run="All")
    assert dry.spec.replicas == 5 and dry.metadata.generation == before.metadata.generation + 1
    after = kube.deployment()
    assert after.spec.replicas == 2 and after.metadata.resource_version == before.metadata.resource_version
    # Writes to the main resource ignore status; /status writes ignore everything else (a Service: nothing else
    # writes to it, so the test does not race a controller).
    svc = kube.core.read_namespaced_service("mystira-chain", NS)
    svc.status.load_balancer = {"ingress": [{"ip": "203.0.113.7"}]}
    svc.metadata.labels["tier"] = "edge"
    replaced = kube.core.replace_namespaced_service("mystira-chain", NS, svc)
    assert replaced.status.load_balancer.ingress is None and replaced.metadata.labels["tier"] == "edge"
    replaced.status.load_balancer = {"ingress": [{"ip": "203.0.113.7"}]}
    replaced.metadata.labels["tier"] = "ignored"
    status_written = kube.core.replace_namespaced_service_status("mystira-chain", NS, replaced)
    assert status_written.status.load_balancer.ingress[0].ip == "203.0.113.7"
    assert status_written.metadata.labels["tier"] == "edge"


def test_watch_with_initial_events_ends_them_with_a_bookmark(kube):
    resp = requests.get(f"{kube.env['SRE_SANDBOX_K8S_URL']}/apis/apps/v1/namespaces/{NS}/deployments",
                        params={"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
                                "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1"},
                        headers={"Authorization": f"Bearer {kube.env['SRE_SANDBOX_K8S_TOKEN']}"},
                        verify=kube.env["REQUESTS_CA_BUNDLE"], timeout=10)
    events = [json.loads(line) for line in resp.text.splitlines()]
    added = [e for e in events if e["type"] == "ADDED"]
    assert len(added) == 4 and events[len(added)]["type"] == "BOOKMARK"
    assert events[len(added)]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_min_ready_seconds_delays_availability(kube):
    kube.apps.patch_namespaced_deployment("mystira-chain", NS, {"spec": {"minReadySeconds": 1}})
    kube.set_image("mystira-chain", "chain", "mystiraacr.azurecr.io/mystira-chain:v1.3.0")

    def new_pod_ready():
        dep = kube.deployment("mystira-chain")
        return dep.status.updated_replicas == 1 and dep.status.ready_replicas >= 1 and dep
    started = time.monotonic()
    dep = kube.wait(new_pod_ready, what="the new pod to be ready")
    new_rs = kube.replicasets("mystira-chain")[4]
    assert new_rs.spec.min_ready_seconds == 1
    done = kube.rollout_done("mystira-chain")
    assert time.monotonic() - started >= 1 and done.status.available_replicas == 1
    assert dep.status.available_replicas <= 1  # never more than the old pod while the new one warms up


def test_unknown_fields_are_dropped_with_a_warning_or_refused_when_strict(kube):
    url, ca = kube.env["SRE_SANDBOX_K8S_URL"], kube.env["REQUESTS_CA_BUNDLE"]
    headers = {"Authorization": f"Bearer {kube.env['SRE_SANDBOX_K8S_TOKEN']}",
               "Content-Type": "application/strategic-merge-patch+json"}
    path = f"{url}/apis/apps/v1/namespaces/{NS}/deployments/{STORY}"
    # A client model's to_dict() gives snake_case names the server does not know.
    body = {"spec": {"template": {"spec": {"containers": [{"name": "storygenerator", "image_pull_policy": "Always"}]}}}}
    before = kube.deployment()
    resp = requests.patch(path, json=body, headers=headers, verify=ca, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Warning"] == '299 - "unknown field \\"spec.template.spec.containers[0].image_pull_policy\\""'
    assert resp.json()["metadata"]["resourceVersion"] == before.metadata.resource_version  # nothing else changed
    strict = requests.patch(path, params={"fieldValidation": "Strict"}, json=body, headers=headers, verify=ca,
                            timeout=10)
    assert strict.status_code == 400 and "strict decoding error" in strict.json()["message"]
    applied = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": STORY},
               "spec": {"replicaCount": 3}}
    with pytest.raises(ApiException) as err:
        kube.apps.patch_namespaced_deployment(STORY, NS, applied, field_manager="helm",
                                              _content_type="application/apply-patch+yaml")
    assert err.value.status == 400 and ".spec.replicaCount: field not declared in schema" in err.value.body
    assert kube.deployment().metadata.resource_version == before.metadata.resource_version
