# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.azure_web import (
    _active_deployment,
    build_matches,
    image_of,
)


@pytest.mark.parametrize("fx_version, image", [
    ("DOCKER|myacr.azurecr.io/api:1.4.2", "myacr.azurecr.io/api:1.4.2"),
    ("docker|nginx:1.25", "nginx:1.25"),
    ("PYTHON|3.12", "PYTHON|3.12"),
    (None, None),
    ("", None),
])
def test_image_of_strips_the_container_prefix_only(fx_version, image):
    assert image_of(SimpleNamespace(linux_fx_version=fx_version, windows_fx_version=None)) == image


@pytest.mark.parametrize("expected", [
    "myacr.azurecr.io/team/api:1.4.2", "team/api:1.4.2", "api:1.4.2", "1.4.2",
])
def test_build_matches_accepts_the_forms_an_incident_ticket_uses(expected):
    assert build_matches("myacr.azurecr.io/team/api:1.4.2", expected)


@pytest.mark.parametrize("expected", ["1.4", "1.4.20", "api", "other:1.4.2", ""])
def test_build_matches_rejects_near_misses(expected):
    assert not build_matches("myacr.azurecr.io/team/api:1.4.2", expected)


def test_build_matches_handles_registry_ports_and_digests():
    assert build_matches("localhost:5000/api:2.0@sha256:abc", "2.0")
    assert not build_matches("localhost:5000/api", "5000/api")
    assert not build_matches(None, "1.0")


def test_active_deployment_prefers_the_active_flag_then_the_newest():
    deployments = [
        SimpleNamespace(name="app/old", active=False, start_time=1),
        SimpleNamespace(name="app/new", active=False, start_time=3),
        SimpleNamespace(name="app/mid", active=False, start_time=2),
    ]
    assert _active_deployment(deployments) == "new"
    deployments[2].active = True
    assert _active_deployment(deployments) == "mid"
    assert _active_deployment([]) is None
