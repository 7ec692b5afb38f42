"""Minimal HTTP plumbing on top of the stdlib: request/response values, a regex
router, and a TLS ThreadingHTTPServer that hands each request to a dispatcher.

Kept deliberately small: the sandbox must not depend on a third-party server
framework, and providers only ever see `Request` and return `Response`.
"""

import json
import re
import select
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


class Stream:
    """A chunked response (a Kubernetes watch): the iterable yields bytes, one chunk each, or None when
    idle (the handler then checks whether the client went away); sent until it ends."""

    def __init__(self, chunks, status=200, headers=None):
        self.status = status
        self.chunks = chunks
        self.headers = dict(headers or {})


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


def _make_handler(dispatch, port_ref, quiet=False):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keep-alive like real endpoints; every response carries Content-Length (or is chunked).
        protocol_version = "HTTP/1.1"

        def version_string(self):
            return "sre-rollback-sandbox"

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            if not quiet:
                super().log_message(format, *args)

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
            if isinstance(response, Stream):
                self._stream(response)
                return
            self.send_header("Content-Length", str(len(response.body)))
            if self.command != "HEAD":
                # Headers and body in one write: one TLS record, one segment for a small answer.
                self._headers_buffer.append(b"\r\n" + response.body)
                self.flush_headers()
            else:
                self.end_headers()

        def _stream(self, response):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in response.chunks:
                    if chunk is None:
                        # Idle: stop if the client has gone (its socket turns readable at EOF or
                        # close_notify; a watching client sends nothing).
                        if select.select([self.connection], [], [], 0)[0]:
                            break
                        continue
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (OSError, ssl.SSLError):
                self.close_connection = True
            finally:
                close = getattr(response.chunks, "close", None)
                if close:
                    close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        # Idle keep-alive connections should not pin a thread forever.
        timeout = 120

        def handle(self):
            # The TLS handshake was deferred out of accept() (see _TlsListener).
            try:
                # Small answers must not wait for the client's delayed ACK (Nagle): 40 ms a request on a
                # kept-alive connection otherwise.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                return
            super().handle()

    return Handler


class HttpsServer:
    """A ThreadingHTTPServer bound to 127.0.0.1 with TLS, run in a background thread."""

    def __init__(self, ssl_context, dispatch, port=0, name="https", quiet=False):
        """quiet: no line per request in the sandbox log (busy ports: a Kubernetes API, a metrics exporter)."""
        self.name = name
        handler = _make_handler(dispatch, lambda: self.port, quiet)
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
