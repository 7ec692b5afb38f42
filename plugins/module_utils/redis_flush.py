# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Clear a Redis cache: keys by pattern with SCAN + UNLINK, or a whole database or server.

The fundrbolt runbook's "Redis Rollback" connects with
``redis-cli -h $REDIS_HOST -p 6380 -a $REDIS_KEY --tls`` and then runs
``FLUSHALL`` or ``DEL session:*`` / ``DEL jwt_blacklist:*`` (which, as written,
deletes nothing: DEL takes key names, not patterns).  This does what was meant:

- pattern mode walks the keyspace with ``SCAN cursor MATCH pattern COUNT n``
  and unlinks each page as it arrives, the ``UNLINK`` of one page pipelined
  with the ``SCAN`` of the next.  Never ``KEYS`` (it blocks the server for the
  whole keyspace); never a list of all keys in memory (the module stays flat
  for millions of keys); ``UNLINK`` frees big values off the main thread.
- flush mode sends ``FLUSHDB ASYNC`` or ``FLUSHALL ASYNC`` (the server swaps
  the keyspace out at once and frees it in the background), and only with an
  explicit confirmation.

:class:`RedisEndpoint` is where to connect (host/port or URL, TLS and the
collection's trust rule, timeouts, retries) and how errors read;
:class:`RedisKeyspace` is the work on one database; :func:`clear_cache` is the
procedure the module runs.  Nothing here imports AnsibleModule.
"""

from __future__ import annotations

import os
import ssl
import time
import traceback
from urllib.parse import unquote, urlsplit

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError
from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle, ssl_verify

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - reported by the module via missing_required_lib
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()
else:
    REDIS_IMPORT_ERROR = None

DEFAULT_PORT = 6379
DEFAULT_TLS_PORT = 6380  # Azure Cache for Redis: the TLS port; the plain one is off by default
FLUSH_SCOPES = ("db", "all")

REDIS_CONNECTION_ARGSPEC = dict(
    host=dict(type="str"),
    port=dict(type="int"),
    db=dict(type="int"),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    url=dict(type="str", no_log=True),
    tls=dict(type="bool"),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    connect_timeout=dict(type="float", default=5.0),
    command_timeout=dict(type="float", default=10.0),
    retries=dict(type="int", default=2),
)


# --------------------------------------------------------------------------
# Where to connect
# --------------------------------------------------------------------------


def parse_redis_url(url):
    """``redis://`` or ``rediss://[[user]:password@]host[:port][/db]`` as a dict.

    Errors never quote the URL: it usually carries the password.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RollbackError("url is not a valid Redis URL (expected rediss://:PASSWORD@HOST:PORT/DB).")
    if parts.scheme not in ("redis", "rediss"):
        raise RollbackError("url must start with redis:// or rediss:// (TLS); unix sockets are not supported.")
    if not parts.hostname:
        raise RollbackError("url names no host (expected rediss://:PASSWORD@HOST:PORT/DB).")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise RollbackError("url's path must be a database number (rediss://HOST:PORT/0).")
    return {
        "host": parts.hostname,
        "port": port,
        "db": int(path) if path else None,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password is not None else None,
        "tls": parts.scheme == "rediss",
    }


class RedisEndpoint:
    """One Redis server and database, and how to reach it safely.

    ``str()`` is ``host:port`` (plus the database): what every message names.
    The password is kept only to authenticate and to scrub it from messages.
    """

    def __init__(self, host, port=None, db=0, username=None, password=None, tls=True, validate_certs=True,
                 ca_path=None, connect_timeout=5.0, command_timeout=10.0, retries=2, environ=None):
        self.host = host
        self.tls = tls
        self.port = port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
        self.db = db or 0
        self.username = username
        self._password = password
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.retries = retries
        self._environ = environ

    @classmethod
    def from_params(cls, params, environ=None):
        url = params.get("url")
        settings = {"host": params.get("host"), "port": params.get("port"), "db": None, "username": None,
                    "password": None, "tls": None}
        if url:
            settings.update(parse_redis_url(url))
            if params.get("tls") is not None and params["tls"] != settings["tls"]:
                raise RollbackError("tls=%s contradicts the url's scheme (%s): leave tls out or change the scheme."
                                    % (params["tls"], "rediss://" if settings["tls"] else "redis://"))
        elif not settings["host"]:
            raise RollbackError("Name the Redis server with host (and port), or with url.")
        for name in ("db", "username", "password", "tls"):
            if params.get(name) is not None:
                settings[name] = params[name]
        if settings["tls"] is None:
            settings["tls"] = True
        for name in ("connect_timeout", "command_timeout"):
            if params.get(name) is not None and params[name] <= 0:
                raise RollbackError("%s must be greater than 0." % name)
        if params.get("retries") is not None and params["retries"] < 0:
            raise RollbackError("retries must be 0 or more.")
        if settings["db"] is not None and settings["db"] < 0:
            raise RollbackError("db must be 0 or more.")
        return cls(validate_certs=params.get("validate_certs", True), ca_path=params.get("ca_path"),
                   connect_timeout=params.get("connect_timeout") or 5.0,
                   command_timeout=params.get("command_timeout") or 10.0,
                   retries=params.get("retries") if params.get("retries") is not None else 2,
                   environ=environ, **settings)

    def __str__(self):
        return "%s:%s" % (self.host, self.port)

    @property
    def label(self):
        return "%s db %s" % (self, self.db)

    def tls_settings(self):
        """redis-py's ssl_* arguments under the collection's trust rule (trust.py)."""
        bundle = ca_bundle(self.validate_certs, self.ca_path, self._environ)
        if bundle is False:
            return {"ssl_cert_reqs": "none", "ssl_check_hostname": False}
        settings = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
        if isinstance(bundle, str):
            ssl_verify(bundle)  # a clear error for a CA path that does not exist
            settings["ssl_ca_path" if os.path.isdir(bundle) else "ssl_ca_certs"] = bundle
        return settings

    def client(self):
        """A redis-py client, bytes in and out (keys need not be UTF-8), connecting on first use.

        redis-py's own retries are off: it retries the connection inside each
        retried command (so attempts multiply) and retries refused credentials.
        :class:`RedisKeyspace` retries whole steps instead, ``retries`` times.
        RESP2, which every Redis server speaks (RESP3 needs Redis 6).
        """
        kwargs = dict(
            host=self.host, port=self.port, db=self.db, username=self.username, password=self._password,
            socket_connect_timeout=self.connect_timeout, socket_timeout=self.command_timeout,
            retry=Retry(NoBackoff(), 0), protocol=2,
            decode_responses=False, client_name="sre.rollback.redis_flush",
        )
        if self.tls:
            kwargs["ssl"] = True
            kwargs.update(self.tls_settings())
        return redis.Redis(**kwargs)

    def scrub(self, text):
        text = str(text)
        if self._password:
            text = text.replace(self._password, "********")
        return text

    def error(self, err, doing):
        """A RollbackError a person can act on, for a redis-py exception met while ``doing``."""
        reason = self.scrub(err) or type(err).__name__
        where = "Redis at %s" % self
        if isinstance(err, redis.AuthenticationError):
            if self._password is None:
                return RollbackError("%s requires a password (%s): set password (the access key), and username "
                                     "for an ACL user." % (where, reason), endpoint=str(self))
            who = "user %s" % self.username if self.username else "the default user"
            return RollbackError("%s refused the credentials of %s while %s: %s Check password (the access key) "
                                 "and username." % (where, who, doing, reason.rstrip(".") + "."), endpoint=str(self))
        if isinstance(err, redis.exceptions.NoPermissionError):
            return RollbackError("%s refused %s the permission needed while %s: %s. Use a user allowed to run "
                                 "INFO, DBSIZE, SCAN, UNLINK (and FLUSHDB or FLUSHALL to flush)." % (
                                     where, "user %s" % self.username if self.username else "the default user",
                                     doing, reason.rstrip(".")), endpoint=str(self))
        if isinstance(err, redis.TimeoutError):
            hint = ""
            if self.tls and "connect" in reason.lower():
                hint = " A TLS handshake with a plain (non-TLS) port also ends this way: check port and tls."
            return RollbackError("%s did not answer while %s within the time allowed (connect_timeout %ss, "
                                 "command_timeout %ss, %s retries): %s.%s" % (
                                     where, doing, self.connect_timeout, self.command_timeout, self.retries,
                                     reason.rstrip("."), hint),
                                 endpoint=str(self))
        if isinstance(err, redis.ConnectionError):
            if _is_tls_failure(err):
                return RollbackError("TLS with %s failed while %s: %s. Trust its CA with ca_path (or SSL_CERT_FILE), "
                                     "and check that port %s is the TLS port (tls: true)." % (
                                         self, doing, reason.rstrip("."), self.port), endpoint=str(self))
            hint = ""
            if "closed by server" in reason.lower() or "reset by peer" in reason.lower():
                hint = " (tls is %s: is port %s a %s port?)" % (
                    str(self.tls).lower(), self.port, "plain" if not self.tls else "TLS")
            return RollbackError("Cannot reach Redis at %s while %s: %s%s" % (self, doing, reason, hint),
                                 endpoint=str(self))
        return RollbackError("%s refused the request while %s: %s" % (where, doing, reason), endpoint=str(self))


def _is_tls_failure(err):
    seen = set()
    current = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return True
        current = current.__cause__ or current.__context__
    text = str(err)
    return "SSL" in text or "certificate" in text.lower()


# --------------------------------------------------------------------------
# The work on one database
# --------------------------------------------------------------------------


class RedisKeyspace:
    """Counting, unlinking and flushing on one connection (its database is the endpoint's ``db``).

    Every step (one command, or one page's pipeline) is tried ``retries`` more
    times after a connection error or a timeout, on a new connection, after a
    short backoff.  Refused credentials or permissions are never retried.
    Re-sending a step is safe: SCAN from the same cursor, UNLINK of keys
    already gone (it then counts them as not deleted) and FLUSH* are all
    harmless twice.
    """

    def __init__(self, client, retries=0, backoff_s=0.2, sleep=time.sleep):
        self.client = client
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.retried = 0

    def _step(self, action):
        attempt = 0
        while True:
            try:
                return action()
            except (redis.ConnectionError, redis.TimeoutError) as err:
                if isinstance(err, (redis.AuthenticationError, redis.exceptions.AuthorizationError)):
                    raise
                if attempt >= self.retries:
                    raise
                self._sleep(min(self.backoff_s * (2 ** attempt), 2.0))
                attempt += 1
                self.retried += 1

    def keyspace(self):
        """Keys per database, from ``INFO keyspace``: ``{"0": 465, "1": 25}`` (empty databases absent)."""
        info = self._step(lambda: self.client.info("keyspace"))
        sizes = {}
        for name, stats in info.items():
            if name.startswith("db") and name[2:].isdigit():
                sizes[name[2:]] = int(stats["keys"] if isinstance(stats, dict) else stats)
        return sizes

    def cluster_enabled(self):
        return bool(self._step(lambda: self.client.info("cluster")).get("cluster_enabled"))

    def dbsize(self):
        return self._step(self.client.dbsize)

    def _scan(self, cursor, pattern, scan_count):
        return self._step(lambda: self.client.scan(cursor, match=pattern, count=scan_count))

    def _unlink_and_scan(self, keys, cursor, pattern, scan_count):
        def page():
            pipe = self.client.pipeline(transaction=False)
            pipe.unlink(*keys)
            pipe.scan(cursor, match=pattern, count=scan_count)
            return pipe.execute()
        return self._step(page)

    def count_matching(self, pattern, scan_count):
        """(keys SCAN returns for ``pattern``, SCAN calls): changes nothing.

        SCAN may return a key twice while the server resizes its table, so
        on a busy server this can overcount slightly; it never undercounts.
        """
        count = calls = 0
        cursor = 0
        while True:
            cursor, keys = self._scan(cursor, pattern, scan_count)
            calls += 1
            count += len(keys)
            if int(cursor) == 0:
                return count, calls

    def unlink_matching(self, pattern, scan_count, progress=None):
        """(keys unlinked, SCAN calls) for ``pattern``.

        Only one SCAN page is ever held.  The UNLINK of a page travels in one
        pipeline with the SCAN of the next, so a page costs one round trip.
        ``deleted`` counts what UNLINK removed, so a key SCAN returned twice
        counts once.  ``progress(deleted, calls)`` is called after each page
        (it is how a failure reports the state reached).
        """
        deleted = calls = 0
        cursor, keys = self._scan(0, pattern, scan_count)
        calls += 1
        while True:
            more = int(cursor) != 0
            if keys and more:
                removed, (cursor, keys) = self._unlink_and_scan(keys, cursor, pattern, scan_count)
                deleted += removed
                calls += 1
            elif keys:
                page = keys
                deleted += self._step(lambda: self.client.unlink(*page))
                keys = []
            elif more:
                cursor, keys = self._scan(cursor, pattern, scan_count)
                calls += 1
            else:
                return deleted, calls
            if progress:
                progress(deleted, calls)

    def flush(self, scope):
        """FLUSHDB ASYNC or FLUSHALL ASYNC: the keyspace is empty on return, memory freed in the background."""
        if scope == "all":
            self._step(lambda: self.client.flushall(asynchronous=True))
        else:
            self._step(lambda: self.client.flushdb(asynchronous=True))


# --------------------------------------------------------------------------
# The procedure
# --------------------------------------------------------------------------


def matches_everything(pattern):
    return pattern.strip("*") == ""


def validate_request(patterns, flush, confirm_flush, scan_count):
    """Every refusal that needs no server, before any connection."""
    if bool(patterns) == bool(flush):
        raise RollbackError("Give either patterns (delete matching keys) or flush (db or all), not %s."
                            % ("both" if patterns else "neither"))
    if flush and flush not in FLUSH_SCOPES:
        raise RollbackError("flush must be one of %s." % ", ".join(FLUSH_SCOPES))
    if scan_count is not None and scan_count < 1:
        raise RollbackError("scan_count must be 1 or more.")
    for pattern in patterns or []:
        if not pattern:
            raise RollbackError("An empty pattern matches no key; remove it or name the keys (session:*).")
    if confirm_flush:
        return
    if flush:
        raise RollbackError(
            "flush: %s deletes every key %s and logs every user out (their sessions go with it). "
            "Set confirm_flush: true to do it, or delete only some keys with patterns."
            % (flush, "of the database" if flush == "db" else "of every database on the server"))
    everything = [p for p in patterns if matches_everything(p)]
    if everything:
        raise RollbackError(
            "Pattern %s matches every key: that is a flush of the database. Use flush: db with "
            "confirm_flush: true, or a narrower pattern." % everything[0])


def _keyspace_text(keyspace):
    lines = ["db%s: %s keys" % (db, n) for db, n in sorted(keyspace.items(), key=lambda i: int(i[0]))]
    return "\n".join(lines or ["(no keys)"]) + "\n"


def clear_cache(endpoint, patterns=None, flush=None, confirm_flush=False, scan_count=1000, check_mode=False):
    """Delete the keys matching ``patterns``, or flush ``db``/``all``; return ``(changed, result)``.

    Everything that can be refused is refused before the first change: bad
    options, credentials, reachability, TLS, cluster mode.  A failure half-way
    through a pattern delete reports how many keys were already deleted.
    """
    started = time.monotonic()
    patterns = list(patterns or [])
    validate_request(patterns, flush, confirm_flush, scan_count)
    redis_client = None
    doing = "connecting"
    result = None
    try:
        redis_client = endpoint.client()
        space = RedisKeyspace(redis_client, endpoint.retries)
        doing = "reading the keyspace (INFO)"
        if space.cluster_enabled():
            raise RollbackError(
                "Redis at %s runs in cluster mode: SCAN and FLUSHDB reach one shard only and UNLINK refuses keys "
                "of other slots. Run the task against each primary shard's own host and port, or flush with the "
                "provider's tooling." % endpoint, endpoint=str(endpoint))
        keyspace_before = space.keyspace()
        dbsize_before = space.dbsize()
        before = {"db": endpoint.db, "dbsize": dbsize_before, "keyspace": keyspace_before}
        result = {"endpoint": str(endpoint), "db": endpoint.db, "tls": endpoint.tls,
                  "mode": "flush" if flush else "patterns", "flushed": None, "patterns": patterns,
                  "deleted_by_pattern": {}, "scan_calls": 0}

        if flush:
            would = sum(keyspace_before.values()) if flush == "all" else dbsize_before
            changed = would > 0
            if changed and not check_mode:
                doing = "flushing (%s)" % ("FLUSHALL ASYNC" if flush == "all" else "FLUSHDB ASYNC")
                space.flush(flush)
                result["flushed"] = flush
            if check_mode:
                keyspace_after = {} if flush == "all" else {db: n for db, n in keyspace_before.items()
                                                            if db != str(endpoint.db)}
                dbsize_after = 0
            else:
                doing = "reading the keyspace after the flush"
                keyspace_after, dbsize_after = space.keyspace(), space.dbsize()
            result["deleted"] = would
        else:
            total = 0
            for pattern in patterns:
                if check_mode:
                    doing = "counting keys matching %s (SCAN)" % pattern
                    count, calls = space.count_matching(pattern, scan_count)
                else:
                    doing = "deleting keys matching %s (SCAN + UNLINK)" % pattern
                    progress = _Progress(result, pattern, total)
                    count, calls = space.unlink_matching(pattern, scan_count, progress)
                result["deleted_by_pattern"][pattern] = count
                result["scan_calls"] += calls
                total += count
            result["deleted"] = total
            changed = total > 0
            if check_mode:
                dbsize_after = max(dbsize_before - total, 0)
                keyspace_after = dict(keyspace_before)
                if dbsize_after:
                    keyspace_after[str(endpoint.db)] = dbsize_after
                else:
                    keyspace_after.pop(str(endpoint.db), None)
            else:
                doing = "reading the keyspace after the deletes"
                keyspace_after, dbsize_after = space.keyspace(), space.dbsize()
    except RollbackError:
        raise
    except redis.RedisError as err:
        failure = endpoint.error(err, doing)
        if result is not None and not check_mode and result.get("deleted_so_far"):
            failure.details["changed"] = True
            failure.details["deleted_so_far"] = result["deleted_so_far"]
            failure.details["deleted_by_pattern"] = result["deleted_by_pattern"]
            failure.message += " Keys deleted before the failure: %s (run the task again to finish)." % (
                failure.details["deleted_so_far"])
        raise failure
    finally:
        if redis_client is not None:
            redis_client.close()

    result.pop("deleted_so_far", None)
    after = {"db": endpoint.db, "dbsize": dbsize_after, "keyspace": keyspace_after}
    result.update(
        before=before,
        after=after,
        diff={"before": _keyspace_text(keyspace_before), "after": _keyspace_text(keyspace_after)},
        retried=space.retried,
        work_s=round(time.monotonic() - started, 3),
    )
    return changed, result


class _Progress:
    """Keeps the running total in the result, so a failure mid-way can say what was already deleted."""

    def __init__(self, result, pattern, earlier):
        self.result = result
        self.pattern = pattern
        self.earlier = earlier

    def __call__(self, deleted, calls):
        self.result["deleted_by_pattern"][self.pattern] = deleted
        self.result["deleted_so_far"] = self.earlier + deleted
