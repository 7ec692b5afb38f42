"""A provider's own call log on its data-plane ports, and its admin routes.

    self.calls = CallLog(sandbox, "keyvault")

is a list the provider appends one dict per request to (under sandbox.lock),
answers `GET /_sandbox/<name>/calls` ({"calls": [...]}) and
`DELETE /_sandbox/<name>/calls` (204), and is cleared by the provider's reset.
"""

from .web import Response


class CallLog(list):
    def __init__(self, sandbox, name):
        super().__init__()
        self._lock = sandbox.lock
        sandbox.admin.add("GET", rf"/_sandbox/{name}/calls", self._list)
        sandbox.admin.add("DELETE", rf"/_sandbox/{name}/calls", self._clear)

    def _list(self, request):
        with self._lock:
            return Response.json({"calls": list(self)})

    def _clear(self, request):
        with self._lock:
            self.clear()
        return Response(204)
