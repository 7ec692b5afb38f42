"""The PostgreSQL provider: real servers, the application login it exports, point-in-time recovery, clean stop."""

import datetime
import json
import os
import sys
import time

import psycopg
import pytest
import sqlalchemy
from sandbox_session import port_open, process_alive, sandboxctl

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from standin.postgres.clusters import PostgresClusters, pick_root, utcnow  # noqa: E402


def _postgres_pids(data_directory):
    """Every process whose command line names this data directory (the postmaster)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if data_directory.encode() in fh.read() and process_alive(int(entry)):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _connect(info, dbname="postgres"):
    return psycopg.connect(host=info["host"], port=info["port"], user=info["admin_user"],
                           password=info["admin_password"], dbname=dbname, autocommit=True, connect_timeout=5)


def test_exported_application_login_works_through_sqlalchemy(sbx):
    env = sbx.env
    for name in ("SRE_SANDBOX_PG_HOST", "SRE_SANDBOX_PG_PORT", "SRE_SANDBOX_PG_USER", "SRE_SANDBOX_PG_PASSWORD",
                 "SRE_SANDBOX_PG_DATABASE", "SRE_SANDBOX_PG_URL", "SRE_SANDBOX_PG_BIN"):
        assert env.get(name), name
    assert os.path.isfile(os.path.join(env["SRE_SANDBOX_PG_BIN"], "pg_dump"))
    engine = sqlalchemy.create_engine(env["SRE_SANDBOX_PG_URL"])
    try:
        with engine.begin() as conn:
            version = conn.execute(sqlalchemy.text("SHOW server_version")).scalar()
            conn.execute(sqlalchemy.text("CREATE TABLE donors (id serial PRIMARY KEY, name text)"))
            conn.execute(sqlalchemy.text("INSERT INTO donors (name) VALUES ('ada')"))
            owner = conn.execute(sqlalchemy.text(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")).scalar()
        assert version.startswith("15.")
        assert owner == env["SRE_SANDBOX_PG_USER"]
    finally:
        engine.dispose()

    # A wrong password is refused (SCRAM), so modules' "wrong credentials" tests are real.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=env["SRE_SANDBOX_PG_HOST"], port=env["SRE_SANDBOX_PG_PORT"],
                        user=env["SRE_SANDBOX_PG_USER"], password="wrong", dbname=env["SRE_SANDBOX_PG_DATABASE"],
                        connect_timeout=5)

    # Reset recreates the application database empty.
    sbx.admin("POST", "reset")
    with psycopg.connect(host=env["SRE_SANDBOX_PG_HOST"], port=env["SRE_SANDBOX_PG_PORT"],
                         user=env["SRE_SANDBOX_PG_USER"], password=env["SRE_SANDBOX_PG_PASSWORD"],
                         dbname=env["SRE_SANDBOX_PG_DATABASE"], connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


def test_admin_route_lists_the_seeded_cluster(sbx):
    state = sbx.admin("GET", "postgres")
    clusters = {c["name"]: c for c in state["clusters"]}
    seeded = clusters["fundrbolt-sandbox-db"]
    assert seeded["port"] == int(sbx.env["SRE_SANDBOX_PG_PORT"])
    assert seeded["created_at"].endswith("Z")
    assert "admin_password" not in json.dumps(state)
    assert state["version"].startswith("15.")


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    root, template_root, remove_on_stop = pick_root(tmp_path_factory.mktemp("pg-clusters"))
    manager = PostgresClusters(root, template_root=template_root, remove_on_stop=remove_on_stop)
    try:
        yield manager
    finally:
        manager.stop_all()


def test_point_in_time_restore_is_real_and_leaves_the_source_alone(clusters):
    source = clusters.create("orders-db")
    assert clusters.create("orders-db") == source  # idempotent by name
    assert source["created_at"].tzinfo is not None
    earliest = clusters.earliest_restore_time("orders-db")
    assert earliest >= source["created_at"]

    with _connect(source) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders VALUES (1, 'before')")
    time.sleep(0.3)
    restore_point = utcnow()
    time.sleep(0.3)
    with _connect(source) as conn:
        conn.execute("INSERT INTO orders VALUES (2, 'after')")
        conn.execute("UPDATE orders SET note = 'changed after' WHERE id = 1")

    restored = clusters.restore("orders-db", "orders-db-restored", restore_point)
    assert restored["port"] != source["port"]
    assert restored["admin_password"] == source["admin_password"]  # logins come with the data
    with _connect(restored) as conn:
        assert conn.execute("SELECT id, note FROM orders ORDER BY id").fetchall() == [(1, "before")]
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        conn.execute("INSERT INTO orders VALUES (3, 'written on the restored server')")  # promoted: writable
    with _connect(source) as conn:
        assert conn.execute("SELECT id, note FROM orders ORDER BY id").fetchall() == [
            (1, "changed after"), (2, "after")]
    assert clusters.get("orders-db-restored")["port"] == restored["port"]
    # A restored cluster has its own archive and base backup: it can be restored in turn.
    assert clusters.earliest_restore_time("orders-db-restored") >= restored["created_at"]


def test_restore_refuses_bad_input_and_changes_nothing(clusters):
    clusters.create("ledger-db")
    earliest = clusters.earliest_restore_time("ledger-db")
    before = clusters.names()
    now = utcnow()
    cases = [
        (("ledger-db", "ledger-db-x", earliest - datetime.timedelta(seconds=5)), "before the earliest"),
        (("ledger-db", "ledger-db-x", now + datetime.timedelta(minutes=5)), "in the future"),
        (("no-such-db", "ledger-db-x", now), "no cluster named 'no-such-db'"),
        (("ledger-db", "ledger-db", now), "already exists"),
        (("ledger-db", "ledger-db-x", now.replace(tzinfo=None)), "timezone-aware"),
        (("ledger-db", "Bad_Name", now), "invalid cluster name"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            clusters.restore(*args)
    assert clusters.names() == before
    assert clusters.get("ledger-db-x") is None


def test_drop_stops_the_server_and_deletes_its_files(clusters):
    info = clusters.create("scratch-db")
    data = next(c["data_directory"] for c in clusters.describe() if c["name"] == "scratch-db")
    assert _postgres_pids(data)
    assert clusters.drop("scratch-db") is True
    assert clusters.drop("scratch-db") is False
    assert not _postgres_pids(data)
    assert not os.path.exists(os.path.dirname(data))
    assert not port_open(info["port"])


def test_stop_leaves_no_postgres_process(tmp_path, monkeypatch):
    monkeypatch.setenv("SRE_SANDBOX_PROVIDERS", "postgres")
    state_dir = tmp_path / "sbx"
    started = time.monotonic()
    sandboxctl("start", state_dir=state_dir)
    start_s = time.monotonic() - started
    try:
        env = json.loads((state_dir / "env.json").read_text())
        runtime = json.loads((state_dir / "runtime.json").read_text())
        port = int(env["SRE_SANDBOX_PG_PORT"])
        assert port in runtime["ports"]  # sandboxctl stop waits for it
        import requests
        state = requests.get(env["SRE_SANDBOX_URL"] + "/postgres", verify=env["REQUESTS_CA_BUNDLE"], timeout=10).json()
        data = state["clusters"][0]["data_directory"]
        assert _postgres_pids(data)
    finally:
        sandboxctl("stop", state_dir=state_dir)
    assert not _postgres_pids(data)
    assert not port_open(port)
    print(f"sandbox start with the postgres provider alone: {start_s:.2f}s")
