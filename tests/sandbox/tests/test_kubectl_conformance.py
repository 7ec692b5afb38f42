"""The real `kubectl` against the Kubernetes stand-in: rollout history, undo and status give what a
real cluster gives (output, error text, exit codes) for Deployments, StatefulSets and DaemonSets.

kubectl is pointed at the sandbox only by `--kubeconfig $SRE_SANDBOX_KUBECONFIG` (KUBECONFIG is never
exported by the sandbox), with its discovery cache in a temporary directory.
"""

import os
import re
import shutil
import subprocess

import pytest

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NS = "mystira"
WORKLOADS = [
    # (resource, container, image repository, tags of revisions 1..3, what `rollout status` says when done)
    ("deployment/mystira-storygenerator", "storygenerator", "mystiraacr.azurecr.io/mystira-storygenerator",
     ("v1.0.0", "v1.1.0", "v1.2.0"), 'deployment "mystira-storygenerator" successfully rolled out'),
    ("statefulset/mystira-eventstore", "eventstore", "mystiraacr.azurecr.io/mystira-eventstore",
     ("v2.0.0", "v2.1.0", "v2.2.0"), "partitioned roll out complete: 2 new pods have been updated..."),
    ("daemonset/mystira-log-agent", "agent", "mystiraacr.azurecr.io/mystira-log-agent",
     ("v3.0.0", "v3.1.0", "v3.2.0"), 'daemon set "mystira-log-agent" successfully rolled out'),
]
BAD_IMAGE = "mystiraacr.azurecr.io/mystira-storygenerator:v1.3.0-broken"

pytestmark = pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl is not installed")


@pytest.fixture
def kubectl(sandbox, tmp_path):
    sandbox.admin("POST", "reset")
    sandbox.admin("PUT", "kubernetes/settings", {"pod_ready_delay_s": 0.2, "controller_tick_s": 0.05})
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)  # nothing from the user's ~/.kube

    def run(*args, timeout=60):
        proc = subprocess.run([KUBECTL, "--kubeconfig", sandbox.env["SRE_SANDBOX_KUBECONFIG"],
                               "--cache-dir", str(tmp_path / "cache"), "-n", NS, *args],
                              capture_output=True, text=True, env=env, timeout=timeout, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    return run


def history(kubectl, resource):
    rc, out, err = kubectl("rollout", "history", resource)
    assert rc == 0, err
    return [(int(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^(\d+)\s+(.*)$", out, re.M)]


def test_get_deployments_prints_the_server_table(kubectl):
    rc, out, err = kubectl("get", "deployments")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    row = next(line.split() for line in lines if line.startswith("mystira-storygenerator "))
    assert row[1:4] == ["2/2", "2", "2"]


@pytest.mark.parametrize("resource,container,repo,tags,done", WORKLOADS, ids=[w[0].split("/")[0] for w in WORKLOADS])
def test_history_undo_and_status(kubectl, resource, container, repo, tags, done):
    kind, name = resource.split("/")
    assert [r for r, _cause in history(kubectl, resource)] == [1, 2, 3]
    rc, out, _err = kubectl("rollout", "history", resource, "--revision=2")
    assert rc == 0 and f"{kind}.apps/{name} with revision #2" in out and f"{repo}:{tags[1]}" in out

    rc, out, err = kubectl("rollout", "undo", resource, "--to-revision=3")
    assert (rc, out.strip()) == (0, f"{kind}.apps/{name} skipped rollback (current template already matches revision 3)")

    rc, out, err = kubectl("rollout", "undo", resource)
    assert (rc, out.strip()) == (0, f"{kind}.apps/{name} rolled back"), err
    rc, out, err = kubectl("rollout", "status", resource, "--timeout=30s")
    assert rc == 0 and out.strip().splitlines()[-1] == done, err
    assert [r for r, _cause in history(kubectl, resource)] == [1, 3, 4]

    rc, out, err = kubectl("rollout", "undo", resource, "--to-revision=1")
    assert (rc, out.strip()) == (0, f"{kind}.apps/{name} rolled back"), err
    rc, out, err = kubectl("rollout", "status", resource, "--timeout=30s")
    assert rc == 0, err
    revisions = history(kubectl, resource)
    assert [r for r, _cause in revisions] == [3, 4, 5] and revisions[-1][1] == dict(history_causes(name))[1]
    rc, out, _err = kubectl("get", resource, "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert out == f"{repo}:{tags[0]}"

    rc, out, err = kubectl("rollout", "undo", resource, "--to-revision=99")
    assert rc == 1 and err.strip() == "error: unable to find specified revision 99 in history"


def history_causes(name):
    """The change-causes the seed gives revisions 1..3."""
    causes = {"mystira-storygenerator": ["release v1.0.0 (build 101)", "release v1.1.0 (build 117)",
                                         "release v1.2.0 (build 123)"],
              "mystira-eventstore": ["eventstore v2.0.0", "eventstore v2.1.0", "eventstore v2.2.0"],
              "mystira-log-agent": ["log agent v3.0.0", "log agent v3.1.0", "log agent v3.2.0"]}[name]
    return list(enumerate(causes, start=1))


def test_history_shows_change_causes(kubectl):
    assert history(kubectl, "deployment/mystira-storygenerator") == history_causes("mystira-storygenerator")
    assert history(kubectl, "statefulset/mystira-eventstore") == history_causes("mystira-eventstore")


def test_status_of_a_stalled_deployment_fails_with_progress_deadline(kubectl):
    rc, _out, err = kubectl("patch", "deployment/mystira-storygenerator", "-p", '{"spec":{"progressDeadlineSeconds":1}}')
    assert rc == 0, err
    rc, out, err = kubectl("set", "image", "deployment/mystira-storygenerator", f"storygenerator={BAD_IMAGE}")
    assert (rc, out.strip()) == (0, "deployment.apps/mystira-storygenerator image updated"), err
    rc, out, err = kubectl("rollout", "status", "deployment/mystira-storygenerator", "--timeout=30s")
    assert rc == 1
    assert err.strip() == 'error: deployment "mystira-storygenerator" exceeded its progress deadline'
    # Undo brings the good revision back and the rollout completes.
    rc, out, err = kubectl("rollout", "undo", "deployment/mystira-storygenerator")
    assert rc == 0, err
    rc, out, err = kubectl("rollout", "status", "deployment/mystira-storygenerator", "--timeout=30s")
    assert rc == 0 and "successfully rolled out" in out, err


@pytest.mark.parametrize("resource,container", [("statefulset/mystira-eventstore", "eventstore"),
                                                ("daemonset/mystira-log-agent", "agent")])
def test_status_of_a_stalled_statefulset_or_daemonset_times_out(kubectl, resource, container):
    # These kinds have no progress deadline: kubectl waits until its own timeout.
    rc, _out, err = kubectl("set", "image", resource, f"{container}={BAD_IMAGE}")
    assert rc == 0, err
    rc, out, err = kubectl("rollout", "status", resource, "--timeout=2s")
    assert rc == 1 and err.strip().endswith("error: timed out waiting for the condition")
    assert "Waiting for" in out
    rc, out, err = kubectl("rollout", "undo", resource)
    assert rc == 0, err
    if resource.startswith("statefulset/"):
        # The StatefulSet controller waits for the broken pod forever (OrderedReady): a real cluster needs
        # the pod deleted by hand after a rollback ("forced rollback").
        rc, out, err = kubectl("rollout", "status", resource, "--timeout=2s")
        assert rc == 1 and err.strip().endswith("error: timed out waiting for the condition")
        rc, out, err = kubectl("delete", "pod", "mystira-eventstore-1")
        assert rc == 0, err
    rc, out, err = kubectl("rollout", "status", resource, "--timeout=30s")
    assert rc == 0 and "Waiting for" not in out.strip().splitlines()[-1], err


def test_scale_and_missing_objects(kubectl):
    rc, out, err = kubectl("scale", "deployment/mystira-chain", "--replicas=3")
    assert (rc, out.strip()) == (0, "deployment.apps/mystira-chain scaled"), err
    rc, out, err = kubectl("rollout", "status", "deployment/mystira-chain", "--timeout=30s")
    assert rc == 0 and out.strip().endswith('deployment "mystira-chain" successfully rolled out')
    rc, out, _err = kubectl("get", "deployment/mystira-chain", "-o", "jsonpath={.status.availableReplicas}")
    assert out == "3"
    rc, out, err = kubectl("rollout", "undo", "deployment/mystira-nope")
    assert rc == 1 and err.strip() == 'Error from server (NotFound): deployments.apps "mystira-nope" not found'
    rc, out, err = kubectl("rollout", "undo", "deployment/mystira-legacy-worker")
    assert rc == 1 and err.strip() == 'error: no rollout history found for deployment "mystira-legacy-worker"'


def test_apply_create_unchanged_and_cascading_delete(kubectl, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec:\n      containers: [{name: web, image: 'nginx:1.27'}]\n", encoding="utf-8")
    rc, out, err = kubectl("apply", "-f", str(manifest))
    assert (rc, out.strip()) == (0, "deployment.apps/web created"), err
    rc, out, err = kubectl("apply", "-f", str(manifest))
    assert (rc, out.strip()) == (0, "deployment.apps/web unchanged"), err
    rc, out, err = kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert rc == 0 and out.strip().endswith('deployment "web" successfully rolled out'), err
    rc, out, err = kubectl("delete", "-f", str(manifest))
    assert (rc, out.strip()) == (0, 'deployment.apps "web" deleted'), err
    rc, out, err = kubectl("get", "replicasets,pods", "-l", "app=web")
    assert rc == 0 and out == "" and "No resources found" in err
