"""One HTTPS listener per host name a provider hands out (an App Service slot,
a Static Web App environment): each gets its own port on 127.0.0.1, because
`*.localhost` names do not resolve here, and ARM reports `127.0.0.1:PORT` as
its host name.

Listeners are kept across /_sandbox/reset (and across a delete), so a host
name stays stable for the life of the process, as a real one does.
"""

from .web import HttpsServer


class HostPool:
    """Subclasses define `_dispatcher(key)`: the request handler of one host."""

    def __init__(self, sandbox, provider):
        self.sandbox = sandbox
        self.provider = provider
        self._servers = {}  # key (lower-cased names) -> HttpsServer

    def host_for(self, key, name):
        """Start a listener for `key` unless it has one; return its `127.0.0.1:PORT`."""
        if key not in self._servers:
            self._servers[key] = HttpsServer(self.sandbox.ssl_context, self._dispatcher(key), name=name).start()
        return f"127.0.0.1:{self._servers[key].port}"

    def ports(self):
        return {"/".join(key): server.port for key, server in self._servers.items()}

    def stop(self):
        for server in self._servers.values():
            server.stop()
