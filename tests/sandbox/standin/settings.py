"""A provider's numeric settings (durations, delays) and their admin routes.

    self.settings = AdminSettings(sandbox, "compute", {"start_s": 5.0, ...})

reads like a dict (`self.settings["start_s"]`), answers
`GET /_sandbox/<name>/settings` and `PUT /_sandbox/<name>/settings` (a JSON
object of known names and numbers >= 0, merged in), and goes back to its
defaults with `reset()` (call it from the provider's reset hook).
"""

from .web import BadJson, Response


class AdminSettings(dict):
    def __init__(self, sandbox, name, defaults):
        super().__init__(defaults)
        self._defaults = dict(defaults)
        self._lock = sandbox.lock
        sandbox.admin.add("GET", rf"/_sandbox/{name}/settings", self._get)
        sandbox.admin.add("PUT", rf"/_sandbox/{name}/settings", self._put)

    def reset(self):
        with self._lock:
            self.clear()
            self.update(self._defaults)

    def _get(self, request):
        with self._lock:
            return Response.json(dict(self))

    def _put(self, request):
        try:
            changes = request.json()
        except BadJson as err:
            return Response.json({"error": f"invalid JSON: {err}"}, 400)
        if not isinstance(changes, dict) or set(changes) - set(self._defaults):
            return Response.json({"error": f"known settings: {', '.join(sorted(self._defaults))}"}, 400)
        try:
            parsed = {key: float(value) for key, value in changes.items()}
        except (TypeError, ValueError):
            return Response.json({"error": "settings are numbers"}, 400)
        if any(value < 0 for value in parsed.values()):
            return Response.json({"error": "settings must be >= 0"}, 400)
        with self._lock:
            self.update(parsed)
            return Response.json(dict(self))
