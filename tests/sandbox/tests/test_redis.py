"""The Redis stand-in: a real redis-server, driven with redis-py as the module drives it."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import redis
import requests
from sandbox_session import port_open, process_alive, sandboxctl


@pytest.fixture
def rsbx(sbx):
    """The session sandbox at seed state, plus its Redis settings."""
    return sbx


def _client(sbx, tls=False, **kwargs):
    env = sbx.env
    settings = dict(host=env["SRE_SANDBOX_REDIS_HOST"], password=env["SRE_SANDBOX_REDIS_PASSWORD"],
                    socket_timeout=5, protocol=2)
    settings.update(kwargs)
    if tls:
        return redis.Redis(port=int(env["SRE_SANDBOX_REDIS_TLS_PORT"]), ssl=True, ssl_ca_certs=sbx.ca, **settings)
    return redis.Redis(port=int(env["SRE_SANDBOX_REDIS_PORT"]), **settings)


def _count(client, pattern):
    return sum(1 for _unused in client.scan_iter(match=pattern, count=500))


def _admin(sbx, method, path, body=None):
    """The admin API without raise_for_status, for the refusals."""
    return requests.request(method, f"{sbx.admin_url}/{path}", json=body, verify=sbx.ca, timeout=40)


def test_env_names_both_ports_and_a_tls_url(rsbx):
    env = rsbx.env
    assert env["SRE_SANDBOX_REDIS_HOST"] == "127.0.0.1"
    assert env["SRE_SANDBOX_REDIS_PORT"] != env["SRE_SANDBOX_REDIS_TLS_PORT"]
    assert env["SRE_SANDBOX_REDIS_URL"] == (
        f"rediss://:{env['SRE_SANDBOX_REDIS_PASSWORD']}@127.0.0.1:{env['SRE_SANDBOX_REDIS_TLS_PORT']}/0")
    assert env["SRE_SANDBOX_REDIS_OPERATOR_USER"] == "cache-operator"


def test_seed_keys_in_db0_and_db1(rsbx):
    client = _client(rsbx)
    assert client.dbsize() == 465
    assert {pattern: _count(client, pattern) for pattern in ("session:*", "jwt_blacklist:*", "cache:*", "feature:*")} == {
        "session:*": 300, "jwt_blacklist:*": 40, "cache:*": 121, "feature:*": 2}
    # Look-alikes that a careless pattern would catch, and a careful one must not.
    assert client.exists("session_stats", "user:42:session:current") == 2
    assert client.hget("session:00007", "user_id") == b"donor-00007"
    assert 0 < client.ttl("session:00007") <= 86400
    assert client.type("cache:leaderboard") == b"zset"
    db1 = _client(rsbx, db=1)
    assert db1.dbsize() == 25 and db1.get("celery:task:3") == b"PENDING"
    state = rsbx.admin("GET", "redis")
    assert state["databases"]["0"]["keys"] == 465
    assert state["databases"]["0"]["by_prefix"]["session"] == 300
    assert state["databases"]["1"] == {"keys": 25, "by_prefix": {"celery": 25}}
    assert state["running"] and state["started_in_s"] < 1.0


def test_tls_port_with_the_sandbox_ca_and_url(rsbx):
    assert _client(rsbx, tls=True).ping()
    from_url = redis.Redis.from_url(rsbx.env["SRE_SANDBOX_REDIS_URL"], ssl_ca_certs=rsbx.ca, protocol=2)
    assert from_url.dbsize() == 465


def test_the_runbook_redis_cli_line_works_over_tls(rsbx):
    # fundrbolt runbook: redis-cli -h $REDIS_HOST -p 6380 -a $REDIS_KEY --tls  (+ the CA a private server needs)
    env = rsbx.env
    cli = shutil.which("redis-cli")
    if not cli:
        pytest.skip("redis-cli is not installed")
    out = subprocess.run([cli, "-h", env["SRE_SANDBOX_REDIS_HOST"], "-p", env["SRE_SANDBOX_REDIS_TLS_PORT"],
                          "-a", env["SRE_SANDBOX_REDIS_PASSWORD"], "--no-auth-warning", "--tls", "--cacert", rsbx.ca,
                          "DBSIZE"], capture_output=True, text=True, timeout=10, check=True)
    assert out.stdout.strip() == "465"


def test_tls_without_trusting_the_sandbox_ca_fails(rsbx, monkeypatch):
    # OpenSSL reads SSL_CERT_FILE at handshake time; the session exports it as the sandbox CA.
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    env = rsbx.env
    client = redis.Redis(host="127.0.0.1", port=int(env["SRE_SANDBOX_REDIS_TLS_PORT"]),
                         password=env["SRE_SANDBOX_REDIS_PASSWORD"], ssl=True, socket_timeout=5, protocol=2,
                         retry_on_error=[], retry=None)
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        client.ping()


def test_password_is_required_and_checked(rsbx):
    with pytest.raises(redis.AuthenticationError):
        _client(rsbx, password=None, retry=None).ping()
    with pytest.raises(redis.AuthenticationError):
        _client(rsbx, password="not-the-key", retry=None).ping()


def test_acl_user_can_unlink_but_not_flush(rsbx):
    env = rsbx.env
    operator = _client(rsbx, username=env["SRE_SANDBOX_REDIS_OPERATOR_USER"],
                       password=env["SRE_SANDBOX_REDIS_OPERATOR_PASSWORD"])
    assert operator.unlink("feature:new_checkout") == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        operator.flushdb()
    assert _client(rsbx).dbsize() == 464


def test_no_persistence_and_data_dir_in_the_state_dir(rsbx):
    config = _client(rsbx).config_get("*")
    assert config["save"] == "" and config["appendonly"] == "no"
    assert config["dir"] == os.path.join(str(rsbx.state_dir), "redis")
    assert config["bind"] == "127.0.0.1"


def test_reset_flushes_and_reseeds_keys_users_and_password(rsbx):
    client = _client(rsbx)
    client.unlink(*client.scan_iter(match="session:*", count=1000))
    _client(rsbx, db=2).set("stray", "1")
    client.acl_setuser("intruder", enabled=True, passwords=["+x"], commands=["+@all"], keys=["*"])
    client.config_set("requirepass", "changed-by-a-test")
    rsbx.admin("POST", "reset")
    client = _client(rsbx)
    assert client.dbsize() == 465 and _count(client, "session:*") == 300
    assert _client(rsbx, db=2).dbsize() == 0
    assert "intruder" not in [u.decode() if isinstance(u, bytes) else u for u in client.acl_users()]


def test_populate_adds_many_keys_fast(rsbx):
    started = time.monotonic()
    answer = rsbx.admin("POST", "redis/populate", {"prefix": "session:bulk", "count": 100000})
    assert answer == {"db": 0, "added": 100000, "keys": 100465}
    assert time.monotonic() - started < 3
    client = _client(rsbx)
    assert client.exists("session:bulk:0", "session:bulk:99999") == 2
    assert rsbx.admin("GET", "redis")["databases"]["0"]["by_prefix"] is None  # too many to walk for the view
    assert _admin(rsbx, "POST", "redis/populate", {"prefix": "x", "count": 0}).status_code == 400
    assert _admin(rsbx, "POST", "redis/populate", {"count": 5}).status_code == 400


def test_pause_all_makes_every_command_wait(rsbx):
    paused = rsbx.admin("POST", "redis/pause", {"seconds": 1.0, "mode": "all"})
    assert paused["mode"] == "all"
    impatient = _client(rsbx, socket_timeout=0.3, retry=None)
    with pytest.raises(redis.TimeoutError):
        impatient.dbsize()
    # CLIENT UNPAUSE would itself be held: the admin API says so instead of hanging.
    assert _admin(rsbx, "DELETE", "redis/pause").status_code == 409
    assert _admin(rsbx, "POST", "redis/pause", {"seconds": 1}).status_code == 409
    started = time.monotonic()
    assert _client(rsbx, socket_timeout=3).dbsize() == 465  # answered once the pause ended
    assert time.monotonic() - started < 1.2
    assert rsbx.admin("GET", "redis")["pause"] is None


def test_pause_write_holds_writes_only_and_can_be_lifted(rsbx):
    rsbx.admin("POST", "redis/pause", {"seconds": 10, "mode": "write"})
    client = _client(rsbx, socket_timeout=0.3, retry=None)
    assert client.dbsize() == 465
    with pytest.raises(redis.TimeoutError):
        client.unlink("feature:donor_export")
    assert _admin(rsbx, "DELETE", "redis/pause").status_code == 204
    assert _client(rsbx).unlink("feature:donor_export") in (0, 1)  # the held UNLINK may have run meanwhile
    assert _client(rsbx).exists("feature:donor_export") == 0


def test_reset_waits_for_a_pause_of_mode_all(rsbx):
    _client(rsbx).unlink("feature:donor_export")
    rsbx.admin("POST", "redis/pause", {"seconds": 0.5, "mode": "all"})
    rsbx.admin("POST", "reset")
    assert _client(rsbx).exists("feature:donor_export") == 1


def test_pause_refuses_bad_input(rsbx):
    for body in ({"seconds": 0}, {"seconds": 11}, {"mode": "read"}, {"seconds": "soon"}, {"extra": 1}):
        assert _admin(rsbx, "POST", "redis/pause", body).status_code == 400, body


def test_slowlog_records_every_command(rsbx):
    rsbx.admin("DELETE", "redis/slowlog")
    _client(rsbx).set("cache:probe", "1")
    entries = rsbx.admin("GET", "redis/slowlog")["entries"]
    assert any(e["command"][:2] == ["SET", "cache:probe"] for e in entries)
    assert all(e["duration_us"] >= 0 for e in entries)


def _wait(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _own_sandbox(tmp_path, monkeypatch):
    """A second sandbox with only the Redis provider, so stopping it does not disturb the session's."""
    monkeypatch.setenv("SRE_SANDBOX_PROVIDERS", "redis")
    started = time.monotonic()
    sandboxctl("start", state_dir=tmp_path)
    took = time.monotonic() - started
    state = requests.get(f"{_read_env(tmp_path)['SRE_SANDBOX_URL']}/redis", verify=str(tmp_path / "ca.pem"),
                         timeout=10).json()
    return state, took


def _read_env(state_dir):
    with open(state_dir / "env.json", encoding="utf-8") as fh:
        return json.load(fh)


def _runtime_pid(state_dir):
    with open(state_dir / "runtime.json", encoding="utf-8") as fh:
        return json.load(fh)["pid"]


def test_stop_leaves_no_redis_server(tmp_path, monkeypatch):
    state, took = _own_sandbox(tmp_path, monkeypatch)
    assert took < 5 and state["started_in_s"] < 1.0
    assert process_alive(state["pid"]) and port_open(state["port"]) and port_open(state["tls_port"])
    sandboxctl("stop", state_dir=tmp_path)
    assert not process_alive(state["pid"])
    assert not port_open(state["port"]) and not port_open(state["tls_port"])


def test_a_killed_sandbox_takes_its_redis_server_with_it(tmp_path, monkeypatch):
    state, _took = _own_sandbox(tmp_path, monkeypatch)
    sandbox_pid = _runtime_pid(tmp_path)
    try:
        os.kill(sandbox_pid, signal.SIGKILL)
        assert _wait(lambda: not process_alive(state["pid"])), "redis-server outlived its sandbox"
        assert _wait(lambda: not port_open(state["port"]))
    finally:
        sandboxctl("stop", state_dir=tmp_path, check=False)


def test_tls_certificate_is_the_sandbox_server_certificate(rsbx):
    ctx = ssl.create_default_context(cafile=rsbx.ca)
    port = int(rsbx.env["SRE_SANDBOX_REDIS_TLS_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
