"""Notification receivers (provider `notify`): what the rollback tells people, captured.

One HTTPS port (the sandbox CA) answers like the receivers the collection
posts to, with their real success and error answers:

  POST /services/{T}/{B}/{token}     a Slack incoming webhook: 200 "ok"; JSON without text,
                                     blocks or attachments 400 "no_text"; not JSON 400
                                     "invalid_payload"; an unknown token 404 "no_service"
  POST /webhookb2/{id}               a Microsoft Teams incoming webhook: 200 "1"; a card with
                                     neither text nor title 400 "Summary or Text is required."
  POST /hooks/{id}                   a generic JSON webhook: 200 {"received": true}
  POST /v2/enqueue                   PagerDuty Events API v2: 202 {"status": "success",
                                     "message": "Event processed", "dedup_key"}; an unknown
                                     routing key or a trigger without summary, source and a known
                                     severity 400 {"status": "invalid event", "errors": [...]}

and a real SMTP server (aiosmtpd) on its own port, with STARTTLS (the sandbox
certificate) and AUTH LOGIN/PLAIN for the seeded user; AUTH is refused before
STARTTLS, as real servers do.

Admin (no auth, never faulted):
  GET    /_sandbox/notify/messages           everything received, oldest first
  DELETE /_sandbox/notify/messages           forget it
  POST   /_sandbox/notify/faults             {"path": "/hooks/ops", "status": 503, "count": 2,
                                              "retry_after": 0} the next `count` requests to that
                                             path get that status (count -1: until reset)
Reset (/_sandbox/reset) clears messages and faults.

Environment: SRE_SANDBOX_NOTIFY_URL, SRE_SANDBOX_SLACK_WEBHOOK_URL,
SRE_SANDBOX_TEAMS_WEBHOOK_URL, SRE_SANDBOX_WEBHOOK_URL, SRE_SANDBOX_PAGERDUTY_URL,
SRE_SANDBOX_PAGERDUTY_ROUTING_KEY, SRE_SANDBOX_SMTP_HOST, SRE_SANDBOX_SMTP_PORT,
SRE_SANDBOX_SMTP_USER, SRE_SANDBOX_SMTP_PASSWORD.
"""

import email
import email.policy
import hashlib
import json
import socket

from ..core import iso, utcnow
from ..web import HttpsServer, Response, Router

try:
    from aiosmtpd.controller import Controller as SmtpController
    from aiosmtpd.smtp import AuthResult
except ImportError:  # the sandbox still runs; only the SMTP receiver is missing
    SmtpController = None

PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")


class NotifyProvider:
    name = "notify"

    def __init__(self, sandbox, arm, operations, faults):
        self.sandbox = sandbox
        self.seed = sandbox.seed_section(self.name)
        self.messages = []
        self.faults = {}
        router = Router()
        router.add("POST", r"/services/(?P<team>[^/]+)/(?P<bot>[^/]+)/(?P<token>[^/]+)", self._slack)
        router.add("POST", r"/webhookb2/(?P<hook>[^/]+)", self._teams)
        router.add("POST", r"/hooks/(?P<hook>[^/]+)", self._webhook)
        router.add("POST", r"/v2/enqueue", self._pagerduty)
        self.router = router
        self.https = HttpsServer(sandbox.ssl_context, self._dispatch, name="notify").start()
        self.smtp = _SmtpReceiver(self, sandbox.ssl_context, self.seed.get("smtp", {})) if SmtpController else None
        self.dataplane = self
        add = sandbox.admin.add
        add("GET", r"/_sandbox/notify/messages", lambda request: Response.json({"messages": self._messages()}))
        add("DELETE", r"/_sandbox/notify/messages", self._forget)
        add("POST", r"/_sandbox/notify/faults", self._add_fault)
        sandbox.on_reset(self._reset)

    # -- plumbing --------------------------------------------------------------------------
    def _dispatch(self, request):
        handler, params = self.router.match(request.method, request.path)
        if handler is None:
            return Response.text("not found", 404)
        fault = self._take_fault(request.path)
        if fault:
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
            self._record("fault", request.path, None, status=fault["status"])
            return Response.text(fault.get("body", "sandbox fault"), fault["status"], headers)
        request.params = params
        return handler(request)

    def _take_fault(self, path):
        with self.sandbox.lock:
            fault = self.faults.get(path)
            if not fault:
                return None
            if fault["count"] > 0:
                fault["count"] -= 1
                if fault["count"] == 0:
                    del self.faults[path]
            return dict(fault)

    def _record(self, channel, path, body, status, **extra):
        with self.sandbox.lock:
            self.messages.append({"time": iso(utcnow()), "channel": channel, "path": path, "status": status,
                                  "body": body, **extra})

    def _messages(self):
        with self.sandbox.lock:
            return [dict(m) for m in self.messages]

    def _forget(self, request):
        with self.sandbox.lock:
            self.messages.clear()
        return Response(204)

    def _add_fault(self, request):
        spec = request.json({}) or {}
        if not spec.get("path") or not isinstance(spec.get("status"), int):
            return Response.json({"error": "a fault needs path and an integer status"}, 400)
        with self.sandbox.lock:
            self.faults[spec["path"]] = {"status": spec["status"], "count": int(spec.get("count", 1)),
                                         "retry_after": spec.get("retry_after"), "body": spec.get("body", "sandbox fault")}
        return Response.json({"path": spec["path"], **self.faults[spec["path"]]}, 201)

    def _reset(self):
        with self.sandbox.lock:
            self.messages.clear()
            self.faults.clear()

    @staticmethod
    def _json(request):
        try:
            return json.loads(request.body or b"")
        except ValueError:
            return None

    # -- receivers -------------------------------------------------------------------------
    def _slack(self, request):
        path = request.path
        if request.params["token"] not in self.seed.get("slack_tokens", []):
            self._record("slack", path, None, 404)
            return Response.text("no_service", 404)
        body = self._json(request)
        if not isinstance(body, dict):
            self._record("slack", path, None, 400)
            return Response.text("invalid_payload", 400)
        if not (body.get("text") or body.get("blocks") or body.get("attachments")):
            self._record("slack", path, body, 400)
            return Response.text("no_text", 400)
        self._record("slack", path, body, 200)
        return Response(200, "ok", content_type="text/html")

    def _teams(self, request):
        body = self._json(request)
        if not isinstance(body, dict):
            self._record("teams", request.path, None, 400)
            return Response.text("Invalid webhook request - Empty Payload", 400)
        if not (body.get("text") or body.get("title") or body.get("summary") or body.get("attachments")):
            self._record("teams", request.path, body, 400)
            return Response.text("Summary or Text is required.", 400)
        self._record("teams", request.path, body, 200)
        return Response.text("1", 200)

    def _webhook(self, request):
        body = self._json(request)
        if body is None:
            self._record("webhook", request.path, None, 400)
            return Response.json({"error": "body is not JSON"}, 400)
        auth = request.headers.get("Authorization")
        self._record("webhook", request.path, body, 200, authorization=bool(auth))
        return Response.json({"received": True})

    def _pagerduty(self, request):
        body = self._json(request)
        errors = []
        if not isinstance(body, dict):
            self._record("pagerduty", request.path, None, 400)
            return Response.json({"status": "invalid event", "message": "Event object is invalid",
                                  "errors": ["Request body is not JSON"]}, 400)
        if body.get("routing_key") not in self.seed.get("pagerduty_routing_keys", []):
            errors.append("'routing_key' is invalid")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
        if action == "trigger":
            payload = body.get("payload") or {}
            for field in ("summary", "source"):
                if not payload.get(field):
                    errors.append("'payload.%s' is missing or blank" % field)
            if payload.get("severity") not in PAGERDUTY_SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of: %s)" % ", ".join(PAGERDUTY_SEVERITIES))
        elif action in ("acknowledge", "resolve") and not body.get("dedup_key"):
            errors.append("'dedup_key' is required for %s events" % action)
        safe = dict(body, routing_key="***") if isinstance(body, dict) else body
        if errors:
            self._record("pagerduty", request.path, safe, 400)
            return Response.json({"status": "invalid event", "message": "Event object is invalid", "errors": errors}, 400)
        dedup_key = body.get("dedup_key") or hashlib.sha1(request.body).hexdigest()
        self._record("pagerduty", request.path, safe, 202, dedup_key=dedup_key)
        return Response.json({"status": "success", "message": "Event processed", "dedup_key": dedup_key}, 202)

    # -- lifecycle -------------------------------------------------------------------------
    def ports(self):
        ports = {"notify/https": self.https.port}
        if self.smtp:
            ports["notify/smtp"] = self.smtp.port
        return ports

    def base_url(self):
        return f"https://127.0.0.1:{self.https.port}"

    def env(self):
        base = self.base_url()
        slack = self.seed.get("slack_tokens", ["sandbox"])[0]
        env = {
            "SRE_SANDBOX_NOTIFY_URL": base,
            "SRE_SANDBOX_SLACK_WEBHOOK_URL": f"{base}/services/T0SANDBOX/B0ROLLBACK/{slack}",
            "SRE_SANDBOX_TEAMS_WEBHOOK_URL": f"{base}/webhookb2/sandbox-incidents",
            "SRE_SANDBOX_WEBHOOK_URL": f"{base}/hooks/status-page",
            "SRE_SANDBOX_PAGERDUTY_URL": f"{base}/v2/enqueue",
            "SRE_SANDBOX_PAGERDUTY_ROUTING_KEY": self.seed.get("pagerduty_routing_keys", [""])[0],
        }
        if self.smtp:
            env.update({
                "SRE_SANDBOX_SMTP_HOST": "127.0.0.1",
                "SRE_SANDBOX_SMTP_PORT": str(self.smtp.port),
                "SRE_SANDBOX_SMTP_USER": self.smtp.user,
                "SRE_SANDBOX_SMTP_PASSWORD": self.smtp.password,
            })
        return env

    def snapshot(self):
        return {"messages": self._messages()}

    def stop(self):
        self.https.stop()
        if self.smtp:
            self.smtp.stop()


class _SmtpReceiver:
    """A real SMTP server (aiosmtpd) that keeps what it receives in the provider's message list."""

    def __init__(self, provider, ssl_context, seed):
        self.provider = provider
        self.user = seed.get("user", "alerts@sandbox.example")
        self.password = seed.get("password", "sandbox-smtp-password")
        # aiosmtpd connects to its own port to check it is up, so it needs a real one, not 0.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free_port = probe.getsockname()[1]
        self.controller = SmtpController(
            self, hostname="127.0.0.1", port=free_port, tls_context=ssl_context, require_starttls=True,
            authenticator=self._authenticate, auth_require_tls=True, ready_timeout=5)
        self.controller.start()
        self.port = free_port

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (getattr(auth_data, "login", b"") or b"").decode() == self.user and \
             (getattr(auth_data, "password", b"") or b"").decode() == self.password
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server, session, envelope):
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.provider._record("email", None, {
            "from": envelope.mail_from, "to": list(envelope.rcpt_tos), "subject": mail["Subject"],
            "severity": mail["X-Rollback-Severity"], "text": mail.get_body(("plain",)).get_content(),
        }, 250, authenticated=bool(session.authenticated), tls=bool(session.ssl))
        return "250 Message accepted for delivery"

    def stop(self):
        self.controller.stop()
