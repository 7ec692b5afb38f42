"""A small RESP2 client on the standard library, for the sandbox's own use.

The sandbox seeds, inspects and pauses the real redis-server it runs; it does
so over the wire protocol like any client, without taking a dependency on
redis-py (the sandbox uses only the standard library and `cryptography`).
Plain TCP only: the admin side talks to the plain port.
"""

import socket


class RespError(Exception):
    """An error reply (`-ERR ...`, `-WRONGPASS ...`) from the server."""


class RespClient:
    def __init__(self, host, port, password=None, username=None, timeout=5.0):
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._file = self._sock.makefile("rb")
        if password is not None:
            if username:
                self.call("AUTH", username, password)
            else:
                self.call("AUTH", password)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        try:
            self._file.close()
        finally:
            self._sock.close()

    def call(self, *args):
        """Send one command and return its reply (raises RespError on an error reply)."""
        self._sock.sendall(encode(args))
        reply = self._read()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def pipeline(self, commands, chunk=1000):
        """Send commands in chunks without waiting for each reply; return the replies in order.

        Error replies are returned in place (as RespError objects), not raised,
        so a caller sees which command failed.
        """
        replies = []
        for start in range(0, len(commands), chunk):
            part = commands[start:start + chunk]
            self._sock.sendall(b"".join(encode(c) for c in part))
            replies.extend(self._read() for _unused in part)
        return replies

    def _read(self):
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed by redis-server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None
            return [self._read() for _unused in range(count)]
        raise ConnectionError(f"unexpected RESP reply {line[:40]!r}")


def encode(args):
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        else:
            data = str(arg).encode("utf-8")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)
