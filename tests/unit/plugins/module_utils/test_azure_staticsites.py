# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import enum
from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_staticsites import (
    EnvironmentState,
    VersionProbe,
    dig,
    environment_from_build,
    environment_name,
    is_absent,
    order_environments,
    parse_version_document,
    site_summary,
)
from ansible_collections.sre.rollback.plugins.module_utils.trust import tls_verify
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError


class BuildStatus(str, enum.Enum):
    READY = "Ready"


def build(**kwargs):
    fields = dict(name=None, build_id=None, hostname=None, status=None, source_branch=None,
                  pull_request_title=None, created_time_utc=None, last_updated_on=None)
    fields.update(kwargs)
    return SimpleNamespace(**fields)


@pytest.mark.parametrize("given, expected", [
    ("default", "default"), ("production", "default"), ("Production", "default"), ("", "default"),
    (None, "default"), (" 42 ", "42"), ("staging", "staging"),
])
def test_environment_name_maps_production_to_default(given, expected):
    assert environment_name(given) == expected


def test_environment_from_build_reads_the_flattened_properties():
    when = datetime.datetime(2025, 2, 17, 14, 30, tzinfo=datetime.timezone.utc)
    state = environment_from_build(build(
        name="default", build_id="default", hostname="gentle-sea.azurestaticapps.net", status=BuildStatus.READY,
        source_branch="main", last_updated_on=when))
    assert state.is_production and state.status == "Ready" and state.settled
    assert state.url == "https://gentle-sea.azurestaticapps.net"
    assert state.last_updated == "2025-02-17T14:30:00+00:00"
    assert state.to_dict()["served_version"] is None


def test_environment_from_build_falls_back_to_the_resource_name():
    state = environment_from_build(build(name="site/42", status="Uploading", pull_request_title="Fix"))
    assert (state.name, state.is_production, state.hostname, state.url) == ("42", False, None, None)
    assert not state.settled and state.pull_request_title == "Fix"


def test_order_puts_production_first():
    states = [EnvironmentState("staging", False), EnvironmentState("42", False), EnvironmentState("default", True)]
    assert [s.name for s in order_environments(states)] == ["default", "42", "staging"]


def test_is_absent():
    assert is_absent(None)
    assert is_absent(EnvironmentState("default", True, status="WaitingForDeployment"))
    assert not is_absent(EnvironmentState("default", True, status="Ready"))
    assert not is_absent(EnvironmentState("42", False, status="WaitingForDeployment"))


def test_site_summary():
    site = SimpleNamespace(name="web", id="/x", location="West Europe", default_hostname="h", repository_url="r",
                           branch="main", provider="GitHub", sku=SimpleNamespace(name="Standard"))
    assert site_summary(site, "rg") == {
        "name": "web", "id": "/x", "resource_group": "rg", "location": "West Europe", "default_hostname": "h",
        "repository_url": "r", "branch": "main", "provider": "GitHub", "sku": "Standard"}
    assert site_summary(SimpleNamespace(name="web"), "rg")["sku"] is None


@pytest.mark.parametrize("body, field, expected", [
    (b'{"version": "1.2.3", "commit": "abc"}', "version", ("1.2.3", "abc")),
    (b'{"version": 7}', "version", ("7", None)),
    (b'{"build": {"version": "2.0"}, "sha": "def"}', "build.version", ("2.0", "def")),
    ('{"version": "1.0", "commit_sha": "123"}', "version", ("1.0", "123")),
])
def test_parse_version_document(body, field, expected):
    assert parse_version_document(body, field) == expected


@pytest.mark.parametrize("body, message", [
    (b"<html>1.2.3</html>", "not JSON"),
    (b"[1, 2]", "not an object"),
    (b'{"commit": "abc"}', "no 'version' value"),
    (b'{"version": {"major": 1}}', "no 'version' value"),
])
def test_parse_version_document_says_what_is_wrong(body, message):
    with pytest.raises(ValueError, match=message):
        parse_version_document(body)


def test_dig():
    assert dig({"a": {"b": 1}}, "a.b") == 1
    assert dig({"a": 1}, "a.b") is None
    assert dig({}, "a") is None


def test_tls_verify(tmp_path):
    assert tls_verify(False) is False
    assert tls_verify(True, environ={}) is True
    with pytest.raises(RollbackError, match="does not exist"):
        tls_verify(True, str(tmp_path / "missing.pem"))
    with pytest.raises(RollbackError, match="does not exist"):
        tls_verify(True, environ={"SSL_CERT_FILE": str(tmp_path / "missing.pem")})
    assert tls_verify(True, str(tmp_path), environ={}) is not True  # a directory of CAs: an SSL context


def test_version_probe_validates_its_options():
    with pytest.raises(RollbackError, match="must start with '/'"):
        VersionProbe("version.json")
    with pytest.raises(RollbackError, match="probe_timeout"):
        VersionProbe(timeout=0)


class FakeResponse:
    def __init__(self, status_code, content):
        self.status_code = status_code
        self.content = content


class FakeClient:
    def __init__(self, answers):
        self.answers = answers
        self.urls = []

    def get(self, url):
        self.urls.append(url)
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_version_probe_reports_version_status_and_errors():
    probe = VersionProbe("/version.json")
    client = FakeClient({
        "https://ok/version.json": FakeResponse(200, b'{"version": "1.2.2", "commit": "a1b2"}'),
        "https://gone/version.json": FakeResponse(404, b"Not Found"),
        "https://html/version.json": FakeResponse(200, b"<html></html>"),
        "https://down/version.json": ConnectionRefusedError("Connection refused"),
    })
    ok = probe.probe("ok", client)
    assert (ok["version"], ok["commit"], ok["status_code"], ok["error"]) == ("1.2.2", "a1b2", 200, None)
    assert ok["elapsed_ms"] >= 0
    assert probe.probe("gone", client)["error"] == "HTTP 404 from https://gone/version.json"
    assert "not JSON" in probe.probe("html", client)["error"]
    down = probe.probe("down", client)
    assert down["status_code"] is None and down["error"] == "ConnectionRefusedError: Connection refused"
