# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set-up and read-back for the Helm integration targets, with real Helm (helm_python) and the cluster.

    python helm_release_fixture.py history  RELEASE  # install 0.1.0, upgrade to 0.2.0 and 0.3.0
    python helm_release_fixture.py pending  RELEASE  # upgrade to 0.4.0, then leave it as an interrupted upgrade
    python helm_release_fixture.py live     RELEASE  # what runs: the ConfigMap and the Deployment, as JSON
    python helm_release_fixture.py state    RELEASE  # Helm's own history (revision, status) and what runs

Environment: KUBECONFIG (one file), HELM_NAMESPACE, HELM_DRIVER_SQL_CONNECTION_STRING (the sql driver's
PostgreSQL), HELM_FIXTURE_CHART (the chart directory).  Every command prints one JSON document.

"pending" makes the state a killed ``helm upgrade --wait`` leaves behind: Helm stores the new revision
as pending-upgrade before it touches the cluster and only marks it deployed (and the old one
superseded) at the end.  A real upgrade is run, then its two storage records are put back to that
mid-way state in Helm's own sql tables (body: base64 of gzipped release JSON; status column), the
same edit a person makes when they patch the release Secret's status label by hand.
"""

import base64
import gzip
import json
import os
import shutil
import ssl
import sys
import tempfile
import urllib.error
import urllib.request

# (chart version, app version, user-supplied values) of each release step, oldest first.
STEPS = [
    ("0.1.0", "1.0.0", {"message": "first", "image": {"tag": "1.0.0"}}),
    ("0.2.0", "1.1.0", {"message": "second", "image": {"tag": "1.1.0"}}),
    ("0.3.0", "1.2.0", {"message": "third", "image": {"tag": "1.2.0"}, "replicas": 2}),
]
PENDING_STEP = ("0.4.0", "1.3.0", {"message": "fourth", "image": {"tag": "1.3.0"}})


def chart_version_dir(source, version, app_version, workdir):
    """A copy of the chart with another version and appVersion (one chart directory serves every step)."""
    target = os.path.join(workdir, "rollback-demo-%s" % version)
    shutil.copytree(source, target)
    path = os.path.join(target, "Chart.yaml")
    with open(path) as handle:
        lines = handle.read().splitlines()
    rewritten = []
    for line in lines:
        if line.startswith("version:"):
            line = "version: %s" % version
        elif line.startswith("appVersion:"):
            line = 'appVersion: "%s"' % app_version
        rewritten.append(line)
    with open(path, "w") as handle:
        handle.write("\n".join(rewritten) + "\n")
    return target


def helm_config():
    import helm_python  # the Go runtime reads HELM_DRIVER_SQL_CONNECTION_STRING when it loads
    return helm_python, helm_python.Config(kubeconfig_path=os.environ["KUBECONFIG"],
                                           namespace=os.environ["HELM_NAMESPACE"], storage_driver="sql")


def deploy(helm_python, config, action, chart, release, values, wait):
    """``helm install`` / ``helm upgrade`` with --disable-openapi-validation.

    The stand-in serves no /openapi/v2 or /v3, which Helm's client-side schema check downloads
    (rollback never validates, so the modules under test are not concerned). Config.install/upgrade
    of helm-python-sdk 0.2 do not pass that option, which the C ABI's options accept.
    """
    options = {"disable_openapi_validation": True, "timeout_seconds": 60}
    if wait:
        options["wait"] = "watcher"
    native = helm_python._native  # pylint: disable=protected-access
    handle = native.HANDLE(0)
    return json.loads(native.call_string("helm_" + action, config._raw(), handle, handle, chart, release,  # pylint: disable=protected-access
                                         json.dumps(values), json.dumps(options)))


def make_history(release):
    helm_python, config = helm_config()
    workdir = tempfile.mkdtemp()
    try:
        for index, (version, app_version, values) in enumerate(STEPS):
            chart = chart_version_dir(os.environ["HELM_FIXTURE_CHART"], version, app_version, workdir)
            deploy(helm_python, config, "install" if index == 0 else "upgrade", chart, release, values, wait=True)
        return config.history(release)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        config.close()


def _decode(body):
    return json.loads(gzip.decompress(base64.b64decode(body)))


def _encode(release):
    return base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()


def make_pending(release):
    import psycopg
    helm_python, config = helm_config()
    workdir = tempfile.mkdtemp()
    try:
        version, app_version, values = PENDING_STEP
        deploy(helm_python, config, "upgrade",
               chart_version_dir(os.environ["HELM_FIXTURE_CHART"], version, app_version, workdir),
               release, values, wait=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        config.close()
    namespace = os.environ["HELM_NAMESPACE"]
    dsn = os.environ["HELM_DRIVER_SQL_CONNECTION_STRING"]
    with psycopg.connect(dsn, autocommit=False) as conn:
        rows = conn.execute("SELECT key, version, body FROM releases_v1 WHERE name = %s AND namespace = %s "
                            "ORDER BY version DESC LIMIT 2", (release, namespace)).fetchall()
        newest, before = rows[0], rows[1]
        for (key, _unused_version, body), status, description in (
                (newest, "pending-upgrade", "Preparing upgrade"), (before, "deployed", None)):
            record = _decode(body)
            record["info"]["status"] = status
            if description:
                record["info"]["description"] = description
            conn.execute("UPDATE releases_v1 SET body = %s, status = %s WHERE key = %s AND namespace = %s",
                         (_encode(record), status, key, namespace))
        conn.commit()
    return {"pending_revision": newest[1], "deployed_revision": before[1]}


def live(release):
    """The ConfigMap's data and the Deployment's image, read from the API server with the kubeconfig's token."""
    import yaml
    with open(os.environ["KUBECONFIG"]) as handle:
        kubeconfig = yaml.safe_load(handle)
    cluster = kubeconfig["clusters"][0]["cluster"]
    user = kubeconfig["users"][0]["user"]
    context = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
    namespace = os.environ["HELM_NAMESPACE"]

    def get(path):
        request = urllib.request.Request(cluster["server"] + path)
        if user.get("token"):
            request.add_header("Authorization", "Bearer " + user["token"])
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    settings = get("/api/v1/namespaces/%s/configmaps/%s-settings" % (namespace, release))
    deployment = get("/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, release))
    return {
        "configmap": settings["data"] if settings else None,
        "image": deployment["spec"]["template"]["spec"]["containers"][0]["image"] if deployment else None,
        "replicas": deployment["spec"].get("replicas") if deployment else None,
    }


def state(release):
    """What Helm stores and what the cluster runs, read without the modules under test."""
    _unused_helm, config = helm_config()
    try:
        revisions = config.history(release)
    finally:
        config.close()
    deployed = [entry["revision"] for entry in revisions if entry["status"] == "deployed"]
    return {
        "statuses": {str(entry["revision"]): entry["status"] for entry in revisions},
        "latest": max(entry["revision"] for entry in revisions),
        "deployed": deployed[-1] if deployed else None,
        "live": live(release),
    }


def main(argv):
    command, release = argv[1], argv[2]
    action = {"history": make_history, "pending": make_pending, "live": live, "state": state}[command]
    json.dump(action(release), sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
