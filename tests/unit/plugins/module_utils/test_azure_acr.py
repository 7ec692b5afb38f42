# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_acr import (
    ContainerRegistry,
    ImageRef,
    close_tags,
    is_acr_login_server,
    resolve_login_server,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("reference, parts", [
    ("myacr.azurecr.io/api:1.4.2", ("myacr.azurecr.io", "api", "1.4.2", None)),
    ("127.0.0.1:5000/mystira/api:1.3.0-rc1", ("127.0.0.1:5000", "mystira/api", "1.3.0-rc1", None)),
    ("localhost/api", ("localhost", "api", None, None)),
    ("mystira/api:2", (None, "mystira/api", "2", None)),
    ("myacr.azurecr.io/team/api@" + DIGEST, ("myacr.azurecr.io", "team/api", None, DIGEST)),
])
def test_parse_splits_registry_repository_tag_and_digest(reference, parts):
    ref = ImageRef.parse(reference)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == parts
    assert ref.reference == reference


@pytest.mark.parametrize("reference", [
    "", "DOCKER|myacr.azurecr.io/api:1", "my acr/api:1", "myacr.azurecr.io/API:1", "myacr.azurecr.io/api:-bad",
    "myacr.azurecr.io/api@sha256:short",
])
def test_parse_refuses_what_docker_refuses(reference):
    with pytest.raises(RollbackError, match="not a container image reference"):
        ImageRef.parse(reference)


def test_with_tag_keeps_registry_and_repository_and_drops_a_digest():
    ref = ImageRef.parse("myacr.azurecr.io/team/api@" + DIGEST).with_tag("1.2.0")
    assert ref.reference == "myacr.azurecr.io/team/api:1.2.0"
    assert ImageRef.parse("nginx").tag_or_digest == "latest"


@pytest.mark.parametrize("host, expected", [
    ("myacr.azurecr.io", True), ("MyAcr.AzureCR.io", True), ("myacr.azurecr.cn:443", True),
    ("registry.sandbox.local", False), ("docker.io", False), (None, False), ("azurecr.io.evil.example", False),
])
def test_acr_login_servers_are_known_by_domain(host, expected):
    assert is_acr_login_server(host) is expected


def test_close_tags_puts_near_spellings_first():
    names = ["latest", "1.4.0", "1.3.0", "1.3.0-rc1", "1.2.1", "1.2.0"]
    assert close_tags("1.3.2", names)[:2] == ["1.3.0", "1.3.0-rc1"]
    assert close_tags("zzz", names) == []


class FakeArm:
    def __init__(self, pages):
        self.pages = pages
        self.requests = []

    def send_request(self, request):
        self.requests.append(request.url)
        body = self.pages[len(self.requests) - 1]
        return SimpleNamespace(raise_for_status=lambda: None, json=lambda: body)


def test_login_server_given_as_host_or_url_needs_no_lookup():
    arm = FakeArm([])
    assert resolve_login_server(arm, "sub", "MyAcr.azurecr.io") == "myacr.azurecr.io"
    assert resolve_login_server(arm, "sub", "https://127.0.0.1:8443/") == "127.0.0.1:8443"
    assert arm.requests == []


def test_registry_name_is_looked_up_across_pages():
    arm = FakeArm([
        {"value": [{"name": "otheracr", "properties": {"loginServer": "otheracr.azurecr.io"}}], "nextLink": "/next"},
        {"value": [{"name": "MystiraAcr", "properties": {"loginServer": "mystiraacr.azurecr.io"}}]},
    ])
    assert resolve_login_server(arm, "sub", "mystiraacr") == "mystiraacr.azurecr.io"
    assert arm.requests[0].startswith("/subscriptions/sub/providers/Microsoft.ContainerRegistry/registries?api-version=")
    assert arm.requests[1] == "/next"


def test_unknown_registry_name_lists_what_exists():
    arm = FakeArm([{"value": [{"name": "otheracr", "properties": {"loginServer": "otheracr.azurecr.io"}}]}])
    with pytest.raises(RollbackError, match=r"'mystiraacr' was not found .* otheracr.*mystiraacr\.azurecr\.io"):
        resolve_login_server(arm, "sub", "mystiraacr")
    with pytest.raises(RollbackError, match="registry must be"):
        resolve_login_server(arm, "sub", "no")


class FakeRegistryClient:
    def __init__(self, tags):
        self.tags = tags

    def get_tag_properties(self, repository, tag):
        for item in self.tags:
            if item.name == tag:
                return item
        from azure.core.exceptions import ResourceNotFoundError
        raise ResourceNotFoundError('{"errors": [{"code": "TAG_UNKNOWN"}]}')

    def list_tag_properties(self, repository, order_by=None, results_per_page=None):
        return iter(self.tags)


def _tag(name):
    return SimpleNamespace(name=name, digest=DIGEST, created_on=None, last_updated_on=None)


def test_require_returns_the_tag_or_names_close_ones():
    registry = ContainerRegistry(FakeRegistryClient([_tag("1.4.0"), _tag("1.3.0"), _tag("1.2.0")]), "myacr.azurecr.io")
    assert registry.require(ImageRef.parse("myacr.azurecr.io/api:1.3.0"))["digest"] == DIGEST
    with pytest.raises(RollbackError) as failure:
        registry.require(ImageRef.parse("myacr.azurecr.io/api:1.3.2"))
    assert "has no tag 1.3.2" in failure.value.message and "Close tags: 1.3.0" in failure.value.message
    assert failure.value.details["available_tags"] == ["1.4.0", "1.3.0", "1.2.0"]
