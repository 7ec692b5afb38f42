"""sandboxctl itself: start, already-running, status, stop leaves nothing behind."""

import json
import os

from sandbox_session import port_open, sandboxctl


def test_start_status_stop(tmp_path):
    state_dir = tmp_path / "sbx"
    sandboxctl("start", state_dir=state_dir)
    try:
        runtime = json.loads((state_dir / "runtime.json").read_text())
        env_sh = (state_dir / "env.sh").read_text()
        for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
                     "AZURE_AUTHORITY_HOST", "AZURE_ARM_ENDPOINT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                     "SRE_SANDBOX_URL", "SRE_SANDBOX_DIR"):
            assert f"export {name}=" in env_sh
        again = sandboxctl("start", state_dir=state_dir)
        assert "already running" in again.stdout
        assert sandboxctl("status", state_dir=state_dir).returncode == 0
    finally:
        sandboxctl("stop", state_dir=state_dir)

    assert not os.path.exists(f"/proc/{runtime['pid']}") or \
        open(f"/proc/{runtime['pid']}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    assert not any(port_open(p) for p in runtime["ports"])
    assert not (state_dir / "env.sh").exists()
    assert sandboxctl("status", state_dir=state_dir, check=False).returncode == 3
    assert sandboxctl("stop", state_dir=state_dir).returncode == 0
