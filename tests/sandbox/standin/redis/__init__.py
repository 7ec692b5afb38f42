"""Redis provider of the sandbox: a REAL redis-server on loopback, seeded.

Stands in for Azure Cache for Redis in the fundrbolt runbook's "Redis
Rollback" (`redis-cli -h $REDIS_HOST -p 6380 -a $REDIS_KEY --tls`, then
FLUSHALL or the `session:*` / `jwt_blacklist:*` keys). Not a model: the real
server answers, so any Redis client (redis-py, redis-cli) works unchanged.

- a plain port and a TLS port (sandbox certificate, CA = the sandbox CA, no
  client certificates), `requirepass` from the seed (the access key) and the
  seed's ACL users;
- no persistence (`--save ''`, `--appendonly no`), data dir `<state>/redis/`;
- seeded at start and on `/_sandbox/reset` (FLUSHALL, users and password back
  to the seed, slow log cleared, then the seed's keys).

Admin API (never faulted or logged):

  GET    /_sandbox/redis            {host, port, tls_port, pid, running, started_in_s, pause,
                                     databases: {db: {keys, by_prefix}}}
  POST   /_sandbox/redis/pause      {"seconds": 2, "mode": "all"|"write"}: CLIENT PAUSE (a slow or frozen cache),
                                    up to 10 s; while a pause of mode all lasts, GET shows no databases
                                    (counting them would wait too) and a reset waits for its end
  DELETE /_sandbox/redis/pause      CLIENT UNPAUSE (mode write only; a pause of mode all holds every
                                    command, CLIENT UNPAUSE included, so it only ends by itself: 409)
  POST   /_sandbox/redis/populate   {"db": 0, "prefix": "session:bulk", "count": 1000}: DEBUG POPULATE,
                                    keys `<prefix>:0` .. `<prefix>:<count-1>`
  GET    /_sandbox/redis/slowlog    {"entries": [{id, time, duration_us, command}]}, slowest first; every
                                    command is logged (threshold 0); cleared by reset and by DELETE
  DELETE /_sandbox/redis/slowlog

Environment: SRE_SANDBOX_REDIS_HOST, SRE_SANDBOX_REDIS_PORT (plain),
SRE_SANDBOX_REDIS_TLS_PORT, SRE_SANDBOX_REDIS_PASSWORD (the default user's),
SRE_SANDBOX_REDIS_URL (rediss://:<password>@127.0.0.1:<tls_port>/0),
SRE_SANDBOX_REDIS_OPERATOR_USER / SRE_SANDBOX_REDIS_OPERATOR_PASSWORD (the
first seeded ACL user).
"""

import os
import threading
import time
from urllib.parse import quote

from ..web import BadJson, Response
from .process import RedisServerProcess
from .resp import RespError

# A reset waits for a pause of mode all to end while holding the sandbox lock: keep pauses short.
MAX_PAUSE_S = 10.0
MAX_POPULATE = 5_000_000
# Counting keys by prefix walks the keyspace with SCAN: fine for the seed, pointless for millions.
PREFIX_COUNT_LIMIT = 50_000


def _error(status, message):
    return Response.json({"error": message}, status)


def expand_seed_keys(entries):
    """The seed's key entries as Redis commands, in order.

    An entry names one key, or with `count` a family of keys whose `{n}`
    (zero-padded to `pad`) runs 0..count-1 in the key and in every value.
    """
    commands = []
    for entry in entries:
        count = entry.get("count")
        numbers = range(count) if count is not None else [None]
        pad = entry.get("pad", 0)
        for number in numbers:
            def fill(text, number=number):
                return text if number is None else text.replace("{n}", str(number).zfill(pad))

            key = fill(entry["key"])
            kind = entry.get("type", "string")
            if kind == "string":
                commands.append(("SET", key, fill(entry["value"])))
            elif kind == "hash":
                flat = [part for name, value in entry["fields"].items() for part in (name, fill(value))]
                commands.append(("HSET", key, *flat))
            elif kind == "zset":
                flat = [part for member, score in entry["members"].items() for part in (score, fill(member))]
                commands.append(("ZADD", key, *flat))
            elif kind == "set":
                commands.append(("SADD", key, *[fill(m) for m in entry["members"]]))
            elif kind == "list":
                commands.append(("RPUSH", key, *[fill(v) for v in entry["values"]]))
            else:
                raise ValueError(f"redis seed: unknown type {kind!r} for {entry['key']}")
            if entry.get("ttl_s"):
                commands.append(("EXPIRE", key, int(entry["ttl_s"])))
    return commands


class RedisProvider:
    name = "redis"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.seed = sandbox.seed_section(self.name)
        if not self.seed.get("password"):
            raise ValueError("seed/redis.json: redis.password is required")
        state_dir = os.path.dirname(sandbox.ca_path)
        self.server = RedisServerProcess(
            work_dir=os.path.join(state_dir, "redis"),
            cert_file=os.path.join(state_dir, "server.pem"),
            key_file=os.path.join(state_dir, "server-key.pem"),
            ca_file=sandbox.ca_path,
            password=self.seed["password"],
        )
        # Started here, on the sandbox's main thread: see process.py on why the thread matters.
        started = time.monotonic()
        self.server.start()
        self.dataplane = self
        self._pause = None  # {"mode", "until"} while a CLIENT PAUSE lasts
        self._pause_lock = threading.Lock()
        try:
            self._load_seed()
        except Exception:
            self.server.stop()
            raise
        self.started_in_s = round(time.monotonic() - started, 3)  # server up and seeded
        add = sandbox.admin.add
        add("GET", r"/_sandbox/redis", self._admin_state)
        add("POST", r"/_sandbox/redis/pause", self._admin_pause)
        add("DELETE", r"/_sandbox/redis/pause", self._admin_unpause)
        add("POST", r"/_sandbox/redis/populate", self._admin_populate)
        add("GET", r"/_sandbox/redis/slowlog", self._admin_slowlog)
        add("DELETE", r"/_sandbox/redis/slowlog", self._admin_clear_slowlog)
        sandbox.on_reset(self._reset)

    # -- seed and reset ---------------------------------------------------------------------
    def _load_seed(self):
        users = self.seed.get("users", {})
        with self.server.client() as client:
            client.call("FLUSHALL", "SYNC")
            client.call("CONFIG", "SET", "requirepass", self.seed["password"])
            # Users a test may have added or changed go; the seed's come back exactly.
            for name in client.call("ACL", "USERS"):
                name = name.decode()
                if name not in ("default", self.server.admin_user):
                    client.call("ACL", "DELUSER", name)
            for name, user in users.items():
                client.call("ACL", "SETUSER", name, "reset", "on", f">{user['password']}", *user.get("rules", []))
            for db, entries in self.seed.get("databases", {}).items():
                client.call("SELECT", int(db))
                failures = [r for r in client.pipeline(expand_seed_keys(entries)) if isinstance(r, RespError)]
                if failures:
                    raise ValueError(f"seed/redis.json db {db}: {failures[0]}")
            client.call("SELECT", 0)
            client.call("SLOWLOG", "RESET")
            client.call("LATENCY", "RESET")

    def _reset(self):
        # A pause of mode all queues every command, FLUSHALL included: wait for it to end.
        self._wait_pause_over()
        self._unpause_quietly()
        self._load_seed()

    # -- sandbox plumbing -------------------------------------------------------------------
    def ports(self):
        return {"redis": self.server.port, "redis/tls": self.server.tls_port}

    def env(self):
        password = self.seed["password"]
        env = {
            "SRE_SANDBOX_REDIS_HOST": self.server.host,
            "SRE_SANDBOX_REDIS_PORT": str(self.server.port),
            "SRE_SANDBOX_REDIS_TLS_PORT": str(self.server.tls_port),
            "SRE_SANDBOX_REDIS_PASSWORD": password,
            "SRE_SANDBOX_REDIS_URL": f"rediss://:{quote(password, safe='')}@{self.server.host}:{self.server.tls_port}/0",
        }
        users = self.seed.get("users", {})
        if users:
            name, user = next(iter(users.items()))
            env["SRE_SANDBOX_REDIS_OPERATOR_USER"] = name
            env["SRE_SANDBOX_REDIS_OPERATOR_PASSWORD"] = user["password"]
        return env

    def stop(self):
        self.server.stop()

    def snapshot(self):
        pause = self._current_pause()
        body = {
            "host": self.server.host,
            "port": self.server.port,
            "tls_port": self.server.tls_port,
            "pid": self.server.pid,
            "running": self.server.running(),
            "started_in_s": self.started_in_s,
            "pause": pause,
            "databases": {},
        }
        if pause and pause["mode"] == "all":
            return body  # every command would wait for the pause; say so instead of hanging
        try:
            body["databases"] = self._databases()
        except (OSError, ConnectionError, RespError) as err:
            body["error"] = str(err)
        return body

    def _databases(self):
        with self.server.client() as client:
            keyspace = client.call("INFO", "keyspace").decode()
            sizes = {}
            for line in keyspace.splitlines():
                if line.startswith("db") and ":" in line:
                    db, stats = line.split(":", 1)
                    fields = dict(item.split("=") for item in stats.split(","))
                    sizes[db[2:]] = int(fields["keys"])
            databases = {}
            for db, size in sorted(sizes.items(), key=lambda item: int(item[0])):
                by_prefix = None
                if size <= PREFIX_COUNT_LIMIT:
                    client.call("SELECT", int(db))
                    by_prefix = {}
                    cursor = b"0"
                    while True:
                        cursor, keys = client.call("SCAN", cursor, "COUNT", 1000)
                        for key in keys:
                            prefix = key.split(b":", 1)[0].decode("utf-8", "replace") if b":" in key else ""
                            by_prefix[prefix] = by_prefix.get(prefix, 0) + 1
                        if cursor == b"0":
                            break
                databases[db] = {"keys": size, "by_prefix": by_prefix}
            return databases

    # -- pause (fault switch) ---------------------------------------------------------------
    def _current_pause(self):
        with self._pause_lock:
            if self._pause and self._pause["until"] <= time.time():
                self._pause = None
            if not self._pause:
                return None
            return {"mode": self._pause["mode"], "remaining_s": round(self._pause["until"] - time.time(), 3)}

    def _wait_pause_over(self):
        pause = self._current_pause()
        if pause and pause["mode"] == "all":
            time.sleep(pause["remaining_s"] + 0.05)

    def _unpause_quietly(self):
        try:
            with self.server.client(timeout=2) as client:
                client.call("CLIENT", "UNPAUSE")
        except (OSError, ConnectionError, RespError):
            pass
        with self._pause_lock:
            self._pause = None

    def _admin_pause(self, request):
        try:
            spec = request.json({})
        except BadJson as err:
            return _error(400, str(err))
        if not isinstance(spec, dict) or set(spec) - {"seconds", "mode"}:
            return _error(400, 'expected {"seconds": 2, "mode": "all"|"write"}')
        mode = spec.get("mode", "all")
        try:
            seconds = float(spec.get("seconds", 2))
        except (TypeError, ValueError):
            return _error(400, "seconds must be a number")
        if mode not in ("all", "write"):
            return _error(400, "mode must be all or write")
        if not 0 < seconds <= MAX_PAUSE_S:
            return _error(400, f"seconds must be > 0 and <= {MAX_PAUSE_S}")
        if self._current_pause():
            return _error(409, "a pause is already on")
        with self.server.client() as client:
            client.call("CLIENT", "PAUSE", int(seconds * 1000), mode.upper())
        with self._pause_lock:
            self._pause = {"mode": mode, "until": time.time() + seconds}
        return Response.json(self._current_pause(), 201)

    def _admin_unpause(self, request):
        pause = self._current_pause()
        if pause and pause["mode"] == "all":
            return _error(409, f"a pause of mode all holds CLIENT UNPAUSE too; it ends by itself in "
                               f"{pause['remaining_s']}s")
        self._unpause_quietly()
        return Response(204)

    # -- bulk keys and the slow log ---------------------------------------------------------
    def _admin_populate(self, request):
        try:
            spec = request.json({})
        except BadJson as err:
            return _error(400, str(err))
        if not isinstance(spec, dict) or set(spec) - {"db", "prefix", "count"} or not spec.get("prefix"):
            return _error(400, 'expected {"db": 0, "prefix": "session:bulk", "count": 1000}')
        try:
            db, count = int(spec.get("db", 0)), int(spec.get("count", 1000))
        except (TypeError, ValueError):
            return _error(400, "db and count are integers")
        if not 0 < count <= MAX_POPULATE or not 0 <= db < 16:
            return _error(400, f"count must be 1..{MAX_POPULATE} and db 0..15")
        if self._current_pause():
            return _error(409, "redis is paused")
        with self.server.client(timeout=60) as client:
            client.call("SELECT", db)
            before = client.call("DBSIZE")
            client.call("DEBUG", "POPULATE", count, spec["prefix"])
            after = client.call("DBSIZE")
        return Response.json({"db": db, "added": after - before, "keys": after}, 201)

    def _admin_slowlog(self, request):
        if self._current_pause():
            return _error(409, "redis is paused")
        with self.server.client() as client:
            raw = client.call("SLOWLOG", "GET", -1)
        entries = [{"id": e[0], "time": e[1], "duration_us": e[2],
                    "command": [a.decode("utf-8", "replace") for a in e[3]]} for e in raw]
        entries.sort(key=lambda e: e["duration_us"], reverse=True)
        return Response.json({"entries": entries})

    def _admin_clear_slowlog(self, request):
        if self._current_pause():
            return _error(409, "redis is paused")
        with self.server.client() as client:
            client.call("SLOWLOG", "RESET")
        return Response(204)

    def _admin_state(self, request):
        return Response.json(self.snapshot())


__all__ = ["RedisProvider", "expand_seed_keys"]
