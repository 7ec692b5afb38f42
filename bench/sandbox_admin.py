# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sandbox's admin API, as every benchmark talks to it (never logged, never faulted).

The benchmarks run through tools/with_sandbox.sh, which loads the sandbox's
environment; without it they stop at once and say how to run them.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request


class SandboxAdmin:
    """The admin API of the sandbox whose environment is loaded."""

    def __init__(self, needed, make_target):
        missing = [name for name in ("SRE_SANDBOX_URL", "REQUESTS_CA_BUNDLE") + tuple(needed) if not os.environ.get(name)]
        if missing:
            sys.exit("The sandbox environment is not loaded (%s missing): run this through "
                     "tools/with_sandbox.sh, or `make %s`." % (", ".join(missing), make_target))
        self.url = os.environ["SRE_SANDBOX_URL"].rstrip("/")
        self.admin_tls = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=self.admin_tls, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None
