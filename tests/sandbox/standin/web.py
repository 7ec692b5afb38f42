"""Minimal HTTP plumbing on top of the stdlib: request/response values, a regex
router, and a TLS ThreadingHTTPServer that hands each request to a dispatcher.

Kept deliberately small: the sandbox must not depend on a third-party server
framework, and providers only ever see `Request` and return `Response`.
"""

import json
import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Request:
    def __init__(self, method, target, headers, body, host_port):
        parts = urlsplit(target)
        self.method = method.upper()
        self.path = parts.path
        self.raw_query = parts.query
        # Query parameter names are case-insensitive in ARM (api-version, Api-Version...).
        self.query = {k.lower(): v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers  # email.message.Message: case-insensitive get()
        self.body = body
        self.port = host_port
        self.params = {}  # filled by the router from named groups

    def json(self, default=None):
        if not self.body:
            return default
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise BadJson(str(err)) from err

    def form(self):
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8")).items()}


class BadJson(Exception):
    """Raised by Request.json(); each front end turns it into its own error shape."""


class Response:
    def __init__(self, status=200, body=b"", headers=None, content_type=None):
        self.status = status
        self.headers = dict(headers or {})
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body
        if content_type:
            self.headers["Content-Type"] = content_type

    @classmethod
    def json(cls, obj, status=200, headers=None):
        return cls(status, json.dumps(obj, indent=None).encode("utf-8"), headers, "application/json; charset=utf-8")

    @classmethod
    def text(cls, text, status=200, headers=None):
        return cls(status, text, headers, "text/plain; charset=utf-8")


class DropConnection(Exception):
    """Raised by a handler to close the socket without sending any response."""


class Router:
    """Ordered list of (method, compiled path regex, handler).

    Patterns are full-match regexes with named groups. ARM paths are
    case-insensitive, so routers can be created with ignore_case=True.
    """

    def __init__(self, ignore_case=False):
        self._routes = []
        self._flags = re.IGNORECASE if ignore_case else 0

    def add(self, method, pattern, handler, first=False):
        """Add a route; first=True puts it before every earlier one (a narrower pattern that an
        earlier, broader one would otherwise answer)."""
        route = (method.upper(), re.compile(pattern, self._flags), handler)
        if first:
            self._routes.insert(0, route)
        else:
            self._routes.append(route)

    def match(self, method, path):
        """Return (handler, params), or (None, allowed_methods) when no route matches."""
        allowed = []
        for route_method, regex, handler in self._routes:
            m = regex.fullmatch(path)
            if not m:
                continue
            if route_method == method:
                return handler, m.groupdict()
            allowed.append(route_method)
        return None, allowed


def _make_handler(dispatch, port_ref):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keep-alive like real endpoints; every response carries Content-Length.
        protocol_version = "HTTP/1.1"

        def version_string(self):
            return "sre-rollback-sandbox"

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, self.path, self.headers, body, port_ref())
            try:
                response = dispatch(request)
            except DropConnection:
                # Half-close so the client sees the connection end with no response.
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        # Idle keep-alive connections should not pin a thread forever.
        timeout = 120

        def handle(self):
            # The TLS handshake was deferred out of accept() (see _TlsListener).
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                return
            super().handle()

    return Handler


class HttpsServer:
    """A ThreadingHTTPServer bound to 127.0.0.1 with TLS, run in a background thread."""

    def __init__(self, ssl_context, dispatch, port=0, name="https"):
        self.name = name
        handler = _make_handler(dispatch, lambda: self.port)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        # Handler threads must never keep the process alive (a 'timeout' fault sleeps in one).
        self._httpd.daemon_threads = True
        self._httpd.socket = _TlsListener(ssl_context, self._httpd.socket)
        self.port = self._httpd.server_address[1]
        self._thread = None

    def start(self):
        # A short poll interval makes shutdown() (and so `sandboxctl stop`) quick.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


class _TlsListener:
    """Listening socket wrapper that does the TLS handshake in the handler thread.

    Wrapping the listening socket with SSLContext.wrap_socket would run the
    handshake inside accept(), i.e. in the single serving thread, so one slow or
    plain-TCP client could stall every other request.
    """

    def __init__(self, ctx, sock):
        self._ctx = ctx
        self._sock = sock

    def accept(self):
        conn, addr = self._sock.accept()
        return self._ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

    def __getattr__(self, name):
        return getattr(self._sock, name)
