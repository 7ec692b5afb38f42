"""Leases (coordination.k8s.io/v1) on the Kubernetes stand-in, driven by the real `kubernetes` client and kubectl.

What sre.rollback.rollback_lock relies on: create (409 AlreadyExists when held), read, replace with a
resourceVersion (409 when stale), delete with a resourceVersion precondition, MicroTime fields as the
API server parses and writes them, the validation of the spec, discovery and `kubectl get lease`.
"""

import datetime
import os
import shutil
import subprocess

import pytest
import requests
from kubernetes import client as k8s, config as k8s_config
from kubernetes.client.exceptions import ApiException

NS = "default"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def coordination(sandbox):
    sandbox.admin("POST", "reset")
    api_client = k8s_config.new_client_from_config(config_file=sandbox.env["SRE_SANDBOX_KUBECONFIG"])
    return k8s.CoordinationV1Api(api_client)


def lease(name, holder, when=datetime.datetime(2026, 12, 6, 17, 0, 0, 250000, tzinfo=datetime.timezone.utc),
          duration=60):
    return k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=name, annotations={"sre.rollback/reason": "P1"}),
                       spec=k8s.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=duration,
                                            acquire_time=when, renew_time=when, lease_transitions=0))


def test_create_read_and_a_second_create_is_409_already_exists(coordination):
    created = coordination.create_namespaced_lease(NS, lease("svc-a", "ops@a:1"))
    assert created.spec.holder_identity == "ops@a:1"
    assert created.metadata.resource_version and created.metadata.uid
    read = coordination.read_namespaced_lease("svc-a", NS)
    assert read.spec.acquire_time == datetime.datetime(2026, 12, 6, 17, 0, 0, 250000, tzinfo=datetime.timezone.utc)
    with pytest.raises(ApiException) as caught:
        coordination.create_namespaced_lease(NS, lease("svc-a", "ops@b:2"))
    assert caught.value.status == 409
    assert '"reason":"AlreadyExists"' in caught.value.body.replace(" ", "")
    assert 'leases.coordination.k8s.io \\"svc-a\\" already exists' in caught.value.body


def test_replace_with_a_stale_resource_version_is_409_and_a_fresh_one_works(coordination):
    first = coordination.create_namespaced_lease(NS, lease("svc-b", "ops@a:1"))
    taken = lease("svc-b", "ops@b:2")
    taken.metadata.resource_version = first.metadata.resource_version
    taken.spec.lease_transitions = 1
    replaced = coordination.replace_namespaced_lease("svc-b", NS, taken)
    assert replaced.spec.holder_identity == "ops@b:2" and replaced.spec.lease_transitions == 1
    stale = lease("svc-b", "ops@c:3")
    stale.metadata.resource_version = first.metadata.resource_version
    with pytest.raises(ApiException) as caught:
        coordination.replace_namespaced_lease("svc-b", NS, stale)
    assert caught.value.status == 409
    assert coordination.read_namespaced_lease("svc-b", NS).spec.holder_identity == "ops@b:2"


def test_delete_honours_the_resource_version_precondition(coordination):
    created = coordination.create_namespaced_lease(NS, lease("svc-c", "ops@a:1"))
    with pytest.raises(ApiException) as caught:
        coordination.delete_namespaced_lease("svc-c", NS, body=k8s.V1DeleteOptions(
            preconditions=k8s.V1Preconditions(resource_version="1")))
    assert caught.value.status == 409
    coordination.delete_namespaced_lease("svc-c", NS, body=k8s.V1DeleteOptions(
        preconditions=k8s.V1Preconditions(resource_version=created.metadata.resource_version)))
    with pytest.raises(ApiException) as caught:
        coordination.read_namespaced_lease("svc-c", NS)
    assert caught.value.status == 404


def test_micro_time_is_written_in_utc_with_six_digits_and_a_time_without_them_is_refused(coordination, sandbox):
    # The raw JSON, to see the wire format (the typed client turns the times into datetimes).
    url = f"{sandbox.env['SRE_SANDBOX_K8S_URL']}/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
    headers = {"Authorization": f"Bearer {sandbox.env['SRE_SANDBOX_K8S_TOKEN']}"}
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "svc-d"},
            "spec": {"holderIdentity": "x", "acquireTime": "2026-12-06T19:00:00.000001+02:00"}}
    answer = requests.post(url, json=body, headers=headers, verify=sandbox.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert answer.status_code == 201
    assert answer.json()["spec"]["acquireTime"] == "2026-12-06T17:00:00.000001Z"
    body["metadata"]["name"] = "svc-e"
    body["spec"]["acquireTime"] = "2026-12-06T17:00:00+00:00"  # what isoformat() writes when microseconds are 0
    answer = requests.post(url, json=body, headers=headers, verify=sandbox.env["REQUESTS_CA_BUNDLE"], timeout=10)
    assert answer.status_code == 400
    assert answer.json()["reason"] == "BadRequest"
    assert 'as "2006-01-02T15:04:05.000000Z07:00"' in answer.json()["message"]


def test_validation_of_the_spec(coordination):
    with pytest.raises(ApiException) as caught:
        coordination.create_namespaced_lease(NS, lease("svc-f", "x", duration=0))
    assert caught.value.status == 422
    assert "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0" in caught.value.body


def test_discovery_and_kubectl_get_lease(coordination, sandbox, tmp_path):
    resources = k8s.CoordinationV1Api(coordination.api_client).get_api_resources()
    assert [(r.name, r.kind, r.namespaced) for r in resources.resources] == [("leases", "Lease", True)]
    coordination.create_namespaced_lease(NS, lease("svc-g", "awx-job-4411"))
    if not os.path.exists(KUBECTL):
        pytest.skip("kubectl is not installed")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run([KUBECTL, "--kubeconfig", sandbox.env["SRE_SANDBOX_KUBECONFIG"], "--cache-dir",
                           str(tmp_path / "cache"), "get", "lease", "-n", NS], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "HOLDER", "AGE"]
    assert lines[1].split()[:2] == ["svc-g", "awx-job-4411"]
