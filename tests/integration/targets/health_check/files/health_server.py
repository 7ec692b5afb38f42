#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Scripted health endpoint for the health_check integration target.

Usage: health_server.py STATE_FILE [LIFETIME_SECONDS]

Listens on 127.0.0.1 on a free port, writes "PORT PID" to STATE_FILE and
serves until killed or LIFETIME_SECONDS (default 300) have passed, so a
failed run never leaves it behind for long.

Routes: /healthy, /status/<code>, /version/<v>, /auth (needs
"Authorization: Bearer s3cret"), /pattern/<key>?p=FFS (per-key sequence,
S = healthy, F = 500, last letter repeats), /hang, /hits (JSON count of
requests served so far, not counting /hits).
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HEALTHY = {"health": "healthy", "version": "1.2.3", "status": {"db": "up"}}
COUNTERS: collections.Counter = collections.Counter()
HITS = [0]
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body, headers=None):
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        parts = urlsplit(self.path)
        path = parts.path.strip("/").split("/")
        if path[0] == "hits":
            self.send(200, {"hits": HITS[0]})
            return
        with LOCK:
            HITS[0] += 1
        if path[0] == "healthy":
            self.send(200, HEALTHY, {"X-App-Version": HEALTHY["version"]})
        elif path[0] == "status":
            self.send(int(path[1]), {"health": "unhealthy"})
        elif path[0] == "version":
            self.send(200, {"health": "healthy", "version": path[1]})
        elif path[0] == "auth":
            ok = self.headers.get("Authorization") == "Bearer s3cret"
            self.send(200 if ok else 401, HEALTHY if ok else {"error": "unauthorized"})
        elif path[0] == "pattern":
            pattern = parse_qs(parts.query)["p"][0]
            with LOCK:
                n = COUNTERS[path[1]]
                COUNTERS[path[1]] += 1
            ok = pattern[min(n, len(pattern) - 1)] == "S"
            self.send(200 if ok else 500, HEALTHY if ok else {"health": "unhealthy"})
        elif path[0] == "hang":
            time.sleep(60)
            self.close_connection = True
        else:
            self.send(404, {"error": "no route"})


def main():
    state_file = sys.argv[1]
    lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Timer(lifetime, server.shutdown).start()
    tmp = state_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.server_address[1]} {os.getpid()}\n")
    os.replace(tmp, state_file)
    server.serve_forever(poll_interval=0.2)
    server.server_close()


if __name__ == "__main__":
    main()
