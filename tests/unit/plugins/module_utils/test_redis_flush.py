# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""redis_flush: option handling, refusals, messages and the retry rule as plain logic, and the
SCAN + UNLINK walk against a throw-away real redis-server (skipped where none is installed)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import tracemalloc

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.redis_flush import (
    RedisEndpoint,
    RedisKeyspace,
    clear_cache,
    matches_everything,
    parse_redis_url,
    validate_request,
)

redis = pytest.importorskip("redis")

SECRET = "s3cr3t/with:odd@chars"


def endpoint(**params):
    base = {"host": "cache.example.net", "validate_certs": True, "connect_timeout": 5.0, "command_timeout": 10.0,
            "retries": 2}
    base.update(params)
    return RedisEndpoint.from_params(base, environ={})


# -- URLs and options -------------------------------------------------------------------------


def test_url_with_password_db_and_tls():
    parsed = parse_redis_url("rediss://:s3cr3t%2Fwith%3Aodd%40chars@cache.example.net:6380/2")
    assert parsed == {"host": "cache.example.net", "port": 6380, "db": 2, "username": None,
                      "password": SECRET, "tls": True}


def test_url_with_user_and_no_port_or_db():
    parsed = parse_redis_url("redis://operator:pw@10.0.0.5")
    assert (parsed["username"], parsed["password"], parsed["port"], parsed["db"], parsed["tls"]) == (
        "operator", "pw", None, None, False)


@pytest.mark.parametrize("url, words", [
    ("http://:%s@host:6380/0", "redis:// or rediss://"),
    ("rediss://:%s@host:6380/zero", "database number"),
    ("rediss://:%s@:6380/0", "no host"),
    ("rediss://:%s@host:notaport/0", "not a valid Redis URL"),
])
def test_bad_urls_are_refused_without_echoing_them(url, words):
    key = "hunter2-access-key"
    with pytest.raises(RollbackError) as caught:
        parse_redis_url(url % key)
    assert words in caught.value.message
    assert key not in caught.value.message


def test_port_defaults_follow_tls():
    assert (endpoint().port, endpoint().tls) == (6380, True)
    assert (endpoint(tls=False).port, endpoint(tls=False).tls) == (6379, False)
    assert endpoint(port=7000).port == 7000


def test_url_settings_and_overrides():
    from_url = endpoint(host=None, url="redis://:inurl@redis.internal:6390/3")
    assert (str(from_url), from_url.db, from_url.tls) == ("redis.internal:6390", 3, False)
    overridden = endpoint(host=None, url="rediss://:inurl@redis.internal/3", db=5, password="other")
    assert (overridden.port, overridden.db, overridden.tls) == (6380, 5, True)
    assert overridden.scrub("other and inurl") == "******** and inurl"


@pytest.mark.parametrize("params, words", [
    ({"host": None, "url": "rediss://h:6380/0", "tls": False}, "contradicts the url's scheme"),
    ({"host": None}, "with url"),
    ({"command_timeout": 0}, "command_timeout must be greater than 0"),
    ({"retries": -1}, "retries must be 0 or more"),
    ({"db": -1}, "db must be 0 or more"),
])
def test_contradictory_or_impossible_options(params, words):
    with pytest.raises(RollbackError, match=words):
        endpoint(**params)


def _write_ca(path):
    """A real self-signed CA certificate: the trust rule loads the file to check it."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unit test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_tls_trust_follows_the_collection_rule(tmp_path):
    pytest.importorskip("cryptography")
    ca_file = tmp_path / "ca.pem"
    _write_ca(ca_file)
    assert endpoint(validate_certs=False).tls_settings() == {"ssl_cert_reqs": "none", "ssl_check_hostname": False}
    assert endpoint(ca_path=str(ca_file)).tls_settings()["ssl_ca_certs"] == str(ca_file)
    assert endpoint(ca_path=str(tmp_path)).tls_settings()["ssl_ca_path"] == str(tmp_path)
    from_env = RedisEndpoint.from_params({"host": "h"}, environ={"SSL_CERT_FILE": str(ca_file)})
    assert from_env.tls_settings()["ssl_ca_certs"] == str(ca_file)
    assert "ssl_ca_certs" not in endpoint().tls_settings()  # the system trust store
    with pytest.raises(RollbackError, match="does not exist"):
        endpoint(ca_path=str(tmp_path / "missing.pem")).tls_settings()


# -- refusals before any connection ---------------------------------------------------------------


@pytest.mark.parametrize("patterns, flush, confirm, words", [
    (["session:*"], "db", True, "not both"),
    ([], None, False, "not neither"),
    (None, "db", False, "confirm_flush: true"),
    (None, "all", False, "every database on the server"),
    (["session:*", "*"], None, False, "matches every key"),
    (["**"], None, False, "matches every key"),
    ([""], None, False, "empty pattern"),
])
def test_refusals(patterns, flush, confirm, words):
    with pytest.raises(RollbackError, match=words):
        validate_request(patterns, flush, confirm, 1000)


def test_confirmed_flush_and_narrow_patterns_pass():
    validate_request(None, "all", True, 1000)
    validate_request(["*"], None, True, 1000)
    validate_request(["session:*", "jwt_blacklist:*"], None, False, 1000)
    with pytest.raises(RollbackError, match="scan_count"):
        validate_request(["session:*"], None, False, 0)
    assert matches_everything("***") and not matches_everything("*:*")


def test_refused_flush_warns_that_everyone_is_logged_out():
    with pytest.raises(RollbackError) as caught:
        validate_request(None, "db", False, 1000)
    assert "logs every user out" in caught.value.message


# -- messages -------------------------------------------------------------------------------------


def test_error_messages_name_the_server_never_the_password():
    ep = endpoint(port=6380, password=SECRET)
    cases = [
        (redis.AuthenticationError("WRONGPASS invalid username-password pair"), "refused the credentials"),
        (redis.TimeoutError("Timeout reading from socket"), "did not answer"),
        (redis.ConnectionError("Error 111 connecting to cache.example.net:6380. Connection refused."),
         "Cannot reach Redis"),
        (redis.ConnectionError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "TLS with"),
        (redis.exceptions.NoPermissionError("this user has no permissions to run the 'flushall' command"),
         "permission needed"),
        (redis.ResponseError("ERR something %s" % SECRET), "refused the request"),
    ]
    for error, words in cases:
        failure = ep.error(error, "deleting keys matching session:*")
        assert words in failure.message, failure.message
        assert "cache.example.net:6380" in failure.message
        assert SECRET not in failure.message
        assert failure.details == {"endpoint": "cache.example.net:6380"}


def test_missing_password_says_so():
    failure = endpoint().error(redis.AuthenticationError("Authentication required."), "connecting")
    assert "requires a password" in failure.message


def test_plain_client_on_a_tls_port_gets_a_hint():
    failure = endpoint(tls=False, port=6380).error(redis.ConnectionError("Connection closed by server."), "connecting")
    assert "tls is false" in failure.message


# -- the retry rule -------------------------------------------------------------------------------


class Flaky:
    """Raises the given errors in turn, then answers."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


def test_transient_errors_are_retried_with_backoff():
    sleeps = []
    space = RedisKeyspace(client=None, retries=2, backoff_s=0.2, sleep=sleeps.append)
    action = Flaky(redis.ConnectionError("reset"), redis.TimeoutError("slow"))
    assert space._step(action) == "answer"
    assert (action.calls, space.retried, sleeps) == (3, 2, [0.2, 0.4])


def test_retries_run_out():
    space = RedisKeyspace(client=None, retries=1, sleep=lambda s: None)
    with pytest.raises(redis.TimeoutError):
        space._step(Flaky(redis.TimeoutError("1"), redis.TimeoutError("2")))


def test_refused_credentials_are_never_retried():
    space = RedisKeyspace(client=None, retries=5, sleep=lambda s: None)
    action = Flaky(redis.AuthenticationError("WRONGPASS"))
    with pytest.raises(redis.AuthenticationError):
        space._step(action)
    assert action.calls == 1


# -- the walk, against a real redis-server ----------------------------------------------------


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(work_dir, *extra):
    """A redis-server of the test's own (about 20 ms to start): (process, endpoint).

    ansible-test runs each test in a fork that ends with os._exit, so no
    teardown runs there: ``setpriv --pdeathsig`` makes the kernel stop the
    server when the process that started it ends, whatever way it ends.
    """
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server is not installed")
    setpriv = shutil.which("setpriv")
    # Tests run in parallel: a free port may be taken before the server binds it, so try another.
    for attempt in range(3):
        port = _free_port()
        argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                "--dir", str(work_dir), "--enable-debug-command", "local"] + list(extra)
        if setpriv:
            argv = [setpriv, "--pdeathsig", "KILL", "--"] + argv
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, protocol=2)
        deadline = time.monotonic() + 10
        while proc.poll() is None:
            try:
                client.ping()
                return proc, RedisEndpoint(host="127.0.0.1", port=port, tls=False)
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        proc.kill()
        proc.wait()
        if attempt == 2:
            raise RuntimeError("redis-server did not start on 127.0.0.1:%d (exit %s)" % (port, proc.returncode))
    raise AssertionError("unreachable")


@pytest.fixture
def server(tmp_path):
    proc, plain_endpoint = _start_redis(tmp_path)
    yield plain_endpoint
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def keys(server):
    client = redis.Redis(host=server.host, port=server.port, protocol=2)
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for n in range(3000):
        pipe.set("session:%d" % n, "x")
    for n in range(1000):
        pipe.set("cache:%d" % n, "y")
    pipe.set("session_stats", "z")
    pipe.set(b"session:\xff\xfe-binary", "not utf-8")
    pipe.execute()
    return client


def test_small_pages_delete_exactly_the_matching_keys(server, keys):
    changed, result = clear_cache(server, ["session:*"], scan_count=37)
    assert changed and result["deleted"] == 3001
    assert result["scan_calls"] > 40  # many pages, each UNLINK pipelined with the next SCAN
    assert keys.dbsize() == 1001
    assert keys.exists("session_stats") == 1
    changed, again = clear_cache(server, ["session:*"], scan_count=37)
    assert not changed and again["deleted"] == 0


def test_check_mode_counts_and_changes_nothing(server, keys):
    changed, result = clear_cache(server, ["session:*", "cache:*", "none:*"], check_mode=True)
    assert changed
    assert result["deleted_by_pattern"] == {"session:*": 3001, "cache:*": 1000, "none:*": 0}
    assert (result["before"]["dbsize"], result["after"]["dbsize"]) == (4002, 1)
    assert keys.dbsize() == 4002


def test_flush_db_leaves_other_databases(server, keys):
    other = redis.Redis(host=server.host, port=server.port, db=3, protocol=2)
    other.set("celery:task:1", "PENDING")
    changed, result = clear_cache(server, flush="db", confirm_flush=True)
    assert changed and result["flushed"] == "db" and result["deleted"] == 4002
    assert result["after"]["keyspace"] == {"3": 1}
    assert (keys.dbsize(), other.dbsize()) == (0, 1)


def test_memory_stays_flat_for_many_keys(server, keys):
    # 200,000 matching keys: holding their names alone would take well over 10 MB.
    keys.execute_command("DEBUG", "POPULATE", 200000, "session:bulk")
    tracemalloc.start()
    try:
        changed, result = clear_cache(server, ["session:bulk:*"], scan_count=1000)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert changed and result["deleted"] == 200000
    assert peak < 2 * 1024 * 1024, "peak %d bytes" % peak


def test_a_failure_half_way_reports_exactly_what_is_already_gone(server, keys):
    # An ACL user may UNLINK session:a* keys only: the first SCAN page holding the one
    # session:b key is refused (NOPERM), after the pages before it were deleted.
    keys.flushall()
    pipe = keys.pipeline(transaction=False)
    for n in range(2000):
        pipe.set("session:a%d" % n, "x")
    pipe.set("session:b0", "x")
    pipe.execute()
    keys.acl_setuser("limited", enabled=True, passwords=["+limited-pw"], keys=["session:a*"], commands=["+@all"])
    limited = RedisEndpoint(host=server.host, port=server.port, tls=False, username="limited", password="limited-pw",
                            retries=3)
    with pytest.raises(RollbackError) as caught:
        clear_cache(limited, ["session:*"], scan_count=10)
    failure = caught.value
    gone = 2000 - sum(1 for _unused in keys.scan_iter(match="session:a*", count=1000))
    assert "refused user limited the permission needed while deleting keys matching session:*" in failure.message
    assert "limited-pw" not in failure.message
    assert keys.exists("session:b0") == 1
    if gone:
        assert failure.details["changed"] is True
        assert failure.details["deleted_so_far"] == gone
        assert "Keys deleted before the failure: %d" % gone in failure.message
    else:  # the refused page was the first one
        assert "deleted_so_far" not in failure.details


def test_cluster_mode_is_refused_before_any_change(tmp_path):
    proc, node = _start_redis(tmp_path, "--cluster-enabled", "yes", "--cluster-config-file",
                              str(tmp_path / "nodes.conf"))
    try:
        with pytest.raises(RollbackError, match="runs in cluster mode") as caught:
            clear_cache(node, flush="all", confirm_flush=True)
        assert caught.value.details == {"endpoint": str(node)}
    finally:
        proc.terminate()
        proc.wait(10)
