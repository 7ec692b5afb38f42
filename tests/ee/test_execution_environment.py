"""The execution environment: `ansible-builder create` makes a complete build context offline.

Building the image needs a container engine, which CI lacks; everything up to it is checked here:
the definition is valid v3, the context is created with every network connection refused, the
Containerfile has the steps the image needs, the collection inside is this tree's build, and
ansible-builder's own introspect step (the one the image build runs) merges the collection's
Python and system requirements.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Loaded first by every Python process started with it on PYTHONPATH: any connection that is not a
# local socket fails, so a step that tried to fetch something would fail the test.
NO_NETWORK = textwrap.dedent("""
    import socket

    def _refuse(self, address, *args, **kwargs):
        if self.family != getattr(socket, "AF_UNIX", None):
            raise OSError("network access attempted during an offline test: %r" % (address,))
        return _connect(self, address, *args, **kwargs)

    _connect = socket.socket.connect
    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.create_connection = lambda address, *a, **k: _refuse(socket.socket(), address)
""")


def requirement_names(path):
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """tools/ee_context.sh run with the network refused; returns the context directory."""
    tmp = tmp_path_factory.mktemp("ee")
    (tmp / "sitecustomize.py").write_text(NO_NETWORK)
    env = dict(os.environ, PYTHONPATH=str(tmp), SRE_ROLLBACK_BIN=str(BIN), PATH="%s:%s" % (BIN, os.environ["PATH"]))
    command = [str(ROOT / "tools" / "ee_context.sh"), str(tmp / "context")]
    # A network namespace with no interface, where the machine allows it, on top of the socket guard.
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], check=False).returncode == 0:
        command = ["unshare", "-n"] + command
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp / "context"


def test_the_network_guard_really_refuses(tmp_path):
    # The offline proof is only as good as the guard: a connection attempt under it must fail.
    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK)
    probe = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)"
    done = subprocess.run([sys.executable, "-c", probe], env=dict(os.environ, PYTHONPATH=str(tmp_path)),
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "network access attempted" in done.stderr


def test_definition_is_valid_v3_and_documents_its_base_image():
    from ansible_builder.ee_schema import validate_schema

    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    validate_schema(definition)  # raises on a schema error
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"]
    assert "base_image" in (ROOT / "execution-environment.yml").read_text().split("images:")[1].split("dependencies:")[0]
    # ansible-core comes from the EE definition, never from the collection's requirements.
    assert "ansible-core" in definition["dependencies"]["ansible_core"]["package_pip"]


def test_collection_declares_its_requirements_for_builder():
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta == {"version": 1, "dependencies": {"python": "requirements.txt", "system": "bindep.txt"}}
    names = requirement_names(ROOT / "requirements.txt")
    assert names, "requirements.txt lists nothing"
    assert not {"ansible", "ansible-core"} & set(names), "the EE's base provides ansible-core"
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        spec = line.split("#", 1)[0]
        assert "<" not in spec and "==" not in spec, "no upper pins in requirements.txt: %s" % line


def test_bindep_parses_and_names_the_system_packages():
    # bindep's own parser, for this machine's platform (dpkg here) and for the EE's (rpm).
    listed = subprocess.run([str(BIN / "bindep"), "-f", str(ROOT / "bindep.txt"), "-l", "newline"],
                            capture_output=True, text=True, check=True).stdout.split()
    text = (ROOT / "bindep.txt").read_text()
    for needed in ("postgresql [platform:rpm]", "git-core [platform:rpm]", "libpq [platform:rpm]"):
        assert needed in text
    if Path("/usr/bin/dpkg").exists():
        assert {"postgresql-client", "libpq5", "git", "ca-certificates"} <= set(listed)


def test_containerfile_has_every_step(context):
    containerfile = (context / "Containerfile").read_text()
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert 'EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in containerfile
    # The collection from the local tarball, offline, then builder's merge of its requirements.
    assert 'ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline"' in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "introspect.py introspect --write-bindep=/tmp/src/bindep.txt --write-pip=/tmp/src/requirements.txt" in containerfile
    assert "install-from-bindep" in containerfile
    # kubectl and helm at pinned versions, each checked against a pinned digest before install.
    for tool in ("KUBECTL", "HELM"):
        version = re.search(r"ARG %s_VERSION=(v\d+\.\d+\.\d+)" % tool, containerfile)
        digest = re.search(r"ARG %s_SHA256=([0-9a-f]{64})\b" % tool, containerfile)
        assert version and digest, "%s is not pinned by version and SHA-256" % tool
        assert 'echo "${%s_SHA256}' % tool in containerfile
    assert containerfile.count("sha256sum --check --strict") == 2
    assert containerfile.index("sha256sum --check --strict") < containerfile.index("install -m 0755 /tmp/kubectl")
    assert "ENV SRE_ROLLBACK_INCIDENT_DIR=/var/lib/sre-rollback/incidents" in containerfile
    assert (context / "_build" / "scripts" / "introspect.py").exists()


def test_context_carries_this_trees_collection(context):
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    entry = requirements["collections"][0]
    assert entry["type"] == "file"
    tarball = context / "_build" / entry["name"]
    assert tarball.is_file(), "the galaxy stage installs %s from /build, which holds _build" % entry["name"]
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
        members = set(archive.getnames())
        assert (manifest["namespace"], manifest["name"], manifest["version"]) == (
            galaxy["namespace"], galaxy["name"], galaxy["version"])
        assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt",
                "plugins/modules/webapp_slot_swap.py"} <= members
        for member in members:
            assert not member.startswith((".venv", ".cache", ".sandbox")), member


def test_introspect_merges_the_collection_requirements(context, tmp_path):
    # What the image build does in its builder stage, run here on the collection the context carries.
    (tmp_path / "sitecustomize.py").write_text(NO_NETWORK)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    collections = tmp_path / "collections"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", str(collections),
                    str(context / "_build" / "collections" / "sre-rollback.tar.gz")],
                   env=env, capture_output=True, text=True, check=True, timeout=120)
    merged_pip, merged_bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    done = subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                           "--write-pip", str(merged_pip), "--write-bindep", str(merged_bindep), str(collections)],
                          env=env, capture_output=True, text=True, check=True, timeout=120)
    assert merged_pip.exists(), done.stdout + done.stderr
    pip_lines = merged_pip.read_text()
    for name in requirement_names(ROOT / "requirements.txt"):
        assert re.search(r"^%s\b.*# from collection sre\.rollback" % re.escape(name), pip_lines, re.M | re.I), (
            "%s missing from the merged requirements:\n%s" % (name, pip_lines))
    assert "ansible-core" not in pip_lines
    bindep_lines = merged_bindep.read_text()
    for package in ("postgresql [platform:rpm]", "git-core [platform:rpm]", "libpq [platform:rpm]"):
        assert re.search(r"^%s\s+# from collection sre\.rollback" % re.escape(package), bindep_lines, re.M), bindep_lines
