#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_flush
short_description: Clear a Redis cache, all of it or the keys matching patterns (SCAN + UNLINK, never KEYS)
version_added: 0.1.0
description:
  - The "Redis Rollback" step of the fundrbolt runbook. Clears a corrupted cache or stale sessions on a
    Redis server such as Azure Cache for Redis, either by key pattern (for example V(session:*) and
    V(jwt_blacklist:*)) or the whole database or server.
  - With O(patterns), walks the keyspace with C(SCAN cursor MATCH pattern COUNT scan_count) and removes each
    page of keys with C(UNLINK) as it arrives, the C(UNLINK) of one page pipelined with the C(SCAN) of the
    next. C(KEYS) is never used, so the server keeps answering other clients between pages, and the module
    never holds more than one page of key names, so its memory stays flat for millions of keys.
  - With O(flush), sends C(FLUSHDB ASYNC) (O(flush=db)) or C(FLUSHALL ASYNC) (O(flush=all)); the keys are
    gone when the task returns and the server frees their memory in the background. A flush only happens
    with O(confirm_flush=true), and so does a pattern that matches every key (V(*)).
  - "B(Warning, from the runbook): deleting C(session:*) keys, or flushing, logs every user out and
    invalidates every session. Deleting C(jwt_blacklist:*) makes revoked tokens valid again until they
    expire. Plan it with the communication template and restart the app afterwards to clear in-memory
    state (M(sre.rollback.webapp_restart))."
  - Idempotent by desired state. When nothing matches (or the database is already empty) nothing is sent
    and the task reports no change; a pattern that matches nothing is not an error.
  - Credentials, reachability, TLS and cluster mode are checked (C(PING), C(INFO)) before anything is
    deleted. A failure half-way through a pattern delete reports how many keys were already deleted;
    running the task again finishes the job.
  - The module runs where Ansible runs it (use a local connection) and needs redis-py there.
author:
  - sre.rollback maintainers (@sre-rollback)
requirements:
  - redis >= 4.2 (redis-py)
attributes:
  check_mode:
    support: full
    description:
      - Connects and counts what would be deleted with C(SCAN) only (or C(DBSIZE) and C(INFO keyspace) for a
        flush); deletes nothing.
      - On a busy server C(SCAN) may return a key twice while Redis resizes its table, so the prediction can
        be slightly high. Keys matching several O(patterns) are counted under each.
  diff_mode:
    support: full
    description: Shows the number of keys per database before and after.
options:
  patterns:
    description:
      - Glob-style patterns (the C(MATCH) syntax of C(SCAN), for example V(session:*), V(cache:event:*),
        V(user:[0-9]*)) of the keys to delete from database O(db).
      - Handled one after the other; the result counts each pattern's deletions.
      - Exactly one of O(patterns) and O(flush) is required.
    type: list
    elements: str
  flush:
    description:
      - V(db) deletes every key of database O(db) (C(FLUSHDB ASYNC)); V(all) deletes every key of every
        database on the server (C(FLUSHALL ASYNC)), as the runbook's C(FLUSHALL).
      - Needs O(confirm_flush=true).
    type: str
    choices: [db, all]
  confirm_flush:
    description:
      - Confirms a destructive clear of everything, that is O(flush), or a pattern that matches every key.
      - Without it such a task fails before connecting, and says why.
    type: bool
    default: false
  scan_count:
    description:
      - The C(COUNT) hint of each C(SCAN) call, about how many keys Redis examines per call; also about the
        largest C(UNLINK) batch.
      - Larger values mean fewer round trips but longer single commands; 1000 keeps each command well under a
        millisecond on a loaded server.
    type: int
    default: 1000
  host:
    description:
      - Host name of the Redis server, for example C(fundrbolt-production-redis.redis.cache.windows.net).
      - Exactly one of O(host) and O(url) is required.
    type: str
  port:
    description:
      - Port of the Redis server.
      - Defaults to C(6380) (the TLS port of Azure Cache for Redis) when O(tls) is on, else C(6379).
    type: int
  db:
    description:
      - Database number to work on. Defaults to the one in O(url), else C(0).
      - O(flush=all) clears every database whatever this says.
    type: int
  username:
    description:
      - ACL user name (Redis 6 and later). Without it, O(password) authenticates the default user, as
        C(redis-cli -a) does with an Azure access key.
    type: str
  password:
    description:
      - Password of O(username) or of the default user (for Azure Cache for Redis, the primary or secondary
        access key). Never shown in output or messages.
      - Overrides a password in O(url).
    type: str
  url:
    description:
      - The server as a URL instead of O(host) and O(port), C(rediss://[[user]:password@]host[:port][/db])
        (V(rediss) is TLS, V(redis) plain). Treated as a secret.
      - O(db), O(username) and O(password) override what the URL says.
    type: str
  tls:
    description:
      - Connect with TLS. Defaults to V(true), or to the scheme of O(url).
    type: bool
  validate_certs:
    description:
      - Verify the server's TLS certificate and host name. Only set V(false) against a test server.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle file (or directory of hashed certificates) to verify the server's certificate with.
      - When unset, E(SSL_CERT_FILE), E(REQUESTS_CA_BUNDLE) and E(SSL_CERT_DIR) are honoured in that order,
        else the system's trust store.
    type: path
  connect_timeout:
    description: Seconds to wait for the TCP connection and the TLS handshake.
    type: float
    default: 5.0
  command_timeout:
    description:
      - Seconds to wait for the answer to any one command. A server paused or blocked longer than this
        makes the command fail (and be retried, see O(retries)).
    type: float
    default: 10.0
  retries:
    description:
      - How many times a command that failed on a connection error or a timeout is sent again, after a short
        backoff. A retried C(UNLINK) whose answer was lost counts its keys as not deleted, although they are.
    type: int
    default: 2
notes:
  - Redis Cluster (cluster mode of Azure Cache for Redis Premium/Enterprise) is refused before any change
    with a clear message; run the task against each primary shard instead.
  - Azure Cache for Redis disables the plain port by default; the defaults (TLS, port 6380) match it.
  - The runbook's C(DEL session:*) deletes nothing (C(DEL) takes key names, not patterns); O(patterns) is
    what it meant.
seealso:
  - module: sre.rollback.webapp_restart
  - name: Redis SCAN
    description: How SCAN iterates and what it guarantees.
    link: https://redis.io/docs/latest/commands/scan/
"""

EXAMPLES = r"""
# WARNING (runbook): deleting sessions logs every user out and invalidates every session.
- name: Clear stale sessions and the JWT blacklist (fundrbolt runbook, Redis Rollback)
  sre.rollback.redis_flush:
    host: fundrbolt-production-redis.redis.cache.windows.net
    password: "{{ redis_access_key }}"
    patterns:
      - "session:*"
      - "jwt_blacklist:*"
  register: cleared

- name: Say what was cleared
  ansible.builtin.debug:
    msg: "{{ cleared.deleted }} keys deleted ({{ cleared.deleted_by_pattern }}); {{ cleared.after.dbsize }} left"

- name: Predict how many cache entries would go, change nothing
  sre.rollback.redis_flush:
    url: "{{ redis_url }}"          # rediss://:KEY@host:6380/0
    patterns: ["cache:*"]
  check_mode: true
  register: prediction

- name: Flush all keys, as the runbook's FLUSHALL (everyone is logged out)
  sre.rollback.redis_flush:
    host: fundrbolt-production-redis.redis.cache.windows.net
    password: "{{ redis_access_key }}"
    flush: all
    confirm_flush: true

- name: Flush one database of a self-hosted Redis with an ACL user and a private CA
  sre.rollback.redis_flush:
    host: redis.internal.example.com
    port: 6379
    tls: true
    ca_path: /etc/pki/tls/certs/corporate-ca.pem
    username: cache-operator
    password: "{{ vault_redis_operator_password }}"
    db: 2
    flush: db
    confirm_flush: true
"""

RETURN = r"""
endpoint:
  description: The server worked on, as C(host:port) (never the password).
  returned: always
  type: str
  sample: fundrbolt-production-redis.redis.cache.windows.net:6380
db:
  description: The database worked on.
  returned: always
  type: int
  sample: 0
tls:
  description: Whether the connection used TLS.
  returned: always
  type: bool
mode:
  description: V(patterns) or V(flush).
  returned: always
  type: str
deleted:
  description:
    - Keys deleted; in check mode, keys that would be deleted.
    - For O(flush=all), the keys of every database.
  returned: always
  type: int
  sample: 340
deleted_by_pattern:
  description: Keys deleted (in check mode, matching) per pattern, in the order given. Empty for a flush.
  returned: always
  type: dict
  sample: {"session:*": 300, "jwt_blacklist:*": 40}
patterns:
  description: The patterns handled.
  returned: always
  type: list
  elements: str
flushed:
  description: V(db) or V(all) when a flush was sent, else null (also in check mode and when already empty).
  returned: always
  type: str
scan_calls:
  description: C(SCAN) calls made (round trips of the pattern walk).
  returned: always
  type: int
before:
  description: The database before, C(db), C(dbsize) (its keys) and C(keyspace) (keys per database number).
  returned: always
  type: dict
  sample: {"db": 0, "dbsize": 465, "keyspace": {"0": 465, "1": 25}}
after:
  description: The same after the task; in check mode, as predicted.
  returned: always
  type: dict
  sample: {"db": 0, "dbsize": 125, "keyspace": {"0": 125, "1": 25}}
retried:
  description: Steps sent again after a connection error or a timeout (see O(retries)).
  returned: always
  type: int
work_s:
  description: Seconds from the first command to the last.
  returned: always
  type: float
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
deleted_so_far:
  description: On a failure in the middle of a pattern delete, the keys already deleted.
  returned: failure
  type: int
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.redis_flush import (
    FLUSH_SCOPES,
    REDIS_CONNECTION_ARGSPEC,
    REDIS_IMPORT_ERROR,
    RedisEndpoint,
    clear_cache,
)


def main():
    module = RollbackModule(
        argument_spec=dict(
            patterns=dict(type="list", elements="str"),
            flush=dict(type="str", choices=list(FLUSH_SCOPES)),
            confirm_flush=dict(type="bool", default=False),
            scan_count=dict(type="int", default=1000),
        ),
        fragments=[REDIS_CONNECTION_ARGSPEC],
        mutually_exclusive=[("patterns", "flush"), ("host", "url"), ("port", "url")],
        required_one_of=[("patterns", "flush"), ("host", "url")],
        supports_check_mode=True,
    )
    module.require_libraries([("redis", REDIS_IMPORT_ERROR)])
    params = module.params

    def clear():
        endpoint = RedisEndpoint.from_params(params)
        changed, result = clear_cache(endpoint, params["patterns"], params["flush"], params["confirm_flush"],
                                      params["scan_count"], module.check_mode)
        diff = result.pop("diff")
        if module.diff_mode:
            result["diff"] = diff
        return changed, result

    module.run(clear)


if __name__ == "__main__":
    main()
