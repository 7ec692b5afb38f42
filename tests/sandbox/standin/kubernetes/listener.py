"""The API server's own HTTPS port (watches are chunked `web.Stream` responses)."""

from ..web import HttpsServer


class ApiListener:
    """Named `dataplane` on the provider so runtime.json lists the port and `sandboxctl stop` waits for it."""

    def __init__(self, ssl_context, dispatch):
        self._server = HttpsServer(ssl_context, dispatch, name="kubernetes-api", quiet=True).start()
        self.port = self._server.port

    def ports(self):
        return {"kubernetes/api": self.port}

    def stop(self):
        self._server.stop()
