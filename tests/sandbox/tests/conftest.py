"""One sandbox per test session (see sandbox_session.py)."""

import json
import os

import pytest
from sandbox_session import Sandbox, sandboxctl


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("sandbox-state")
    sandboxctl("start", state_dir=state_dir)
    with open(state_dir / "env.json", encoding="utf-8") as fh:
        env = json.load(fh)
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
    os.environ["SSL_CERT_FILE"] = env["SSL_CERT_FILE"]
    try:
        yield Sandbox(state_dir, env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sandboxctl("stop", state_dir=state_dir, check=False)


@pytest.fixture
def sbx(sandbox):
    """The session sandbox, back at seed state, tuned for fast swaps."""
    sandbox.admin("POST", "reset")
    sandbox.admin("PUT", "settings", {"swap_duration_s": 0.2, "lro_retry_after_s": 0})
    return sandbox


@pytest.fixture(scope="session")
def client(sandbox):
    return sandbox.web_client()
