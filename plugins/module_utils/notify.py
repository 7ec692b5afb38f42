# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tell people what a rollback is doing: Slack, Microsoft Teams, a generic
webhook, email (SMTP) and PagerDuty Events v2.

A notification is never the reason a rollback stops: every channel is tried,
each failure is recorded with what the receiver said, and the caller decides
whether a failed delivery fails the task (the module's default is no).
Webhook URLs, the SMTP password and the PagerDuty routing key are secrets:
results name a channel by its type and host only.
"""

from __future__ import annotations

import smtplib
import ssl
import time
import traceback
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from ansible_collections.sre.rollback.plugins.module_utils.trust import ca_bundle, ssl_verify

try:
    import httpx
except ImportError:
    HTTPX_IMPORT_ERROR = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None

SEVERITIES = ("critical", "warning", "info")
CHANNEL_TYPES = ("slack", "teams", "webhook", "email", "pagerduty")
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
# PagerDuty's own severities; ours map onto them.
PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
# Receivers answer these when they are busy or briefly down: worth another try.
RETRYABLE_STATUS = (408, 429, 500, 502, 503, 504)
SLACK_COLOURS = {"critical": "#d00000", "warning": "#f2c744", "info": "#2eb886"}


class DeliveryError(Exception):
    """One channel could not take the message; ``retryable`` says whether to try again."""

    def __init__(self, message, status=None, retryable=False, retry_after=None):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class Message:
    """What every channel sends, each in its own format."""

    def __init__(self, title, text, severity="info", event=None, fields=None, dedup_key=None, source="sre.rollback"):
        self.title = title
        self.text = text
        self.severity = severity
        self.event = event
        self.fields = dict(fields or {})
        self.dedup_key = dedup_key
        self.source = source

    def plain(self):
        return "%s\n\n%s" % (self.title, self.text) if self.text else self.title


def describe_target(channel):
    """A channel as results may show it: type and host, never the secret path or key."""
    if channel["type"] == "email":
        return "email via %s:%s to %s" % (channel.get("smtp_host"), channel.get("smtp_port"), ", ".join(channel.get("to") or []))
    host = urlsplit(channel.get("url") or PAGERDUTY_EVENTS_URL).hostname
    return "%s via %s" % (channel["type"], host)


class HttpChannel:
    """Slack, Teams, generic webhooks and PagerDuty: one JSON POST each."""

    def __init__(self, channel, client):
        self.channel = channel
        self.client = client

    def url(self):
        return self.channel.get("url")

    def payload(self, message):
        """A generic webhook takes the message as data; Slack, Teams and PagerDuty reshape it."""
        return {
            "title": message.title,
            "text": message.text,
            "severity": message.severity,
            "event": message.event,
            "fields": message.fields,
            "source": message.source,
        }

    def accepted(self, response):
        return 200 <= response.status_code < 300

    def send(self, message):
        try:
            response = self.client.post(self.url(), json=self.payload(message), headers=self.channel.get("headers") or {})
        except httpx.TimeoutException as error:
            raise DeliveryError("no answer in time (%s)" % type(error).__name__, retryable=True)
        except httpx.HTTPError as error:
            raise DeliveryError("could not connect (%s: %s)" % (type(error).__name__, error), retryable=True)
        if self.accepted(response):
            return {"status": response.status_code, "receipt": self.receipt(response)}
        body = response.text[:300]
        raise DeliveryError(
            "the receiver answered %s: %s" % (response.status_code, body or response.reason_phrase),
            status=response.status_code,
            retryable=response.status_code in RETRYABLE_STATUS,
            retry_after=_retry_after(response),
        )

    def receipt(self, response):
        return None


class SlackChannel(HttpChannel):
    """Slack incoming webhook: text for notifications, an attachment for the colour bar."""

    def payload(self, message):
        lines = ["%s: %s" % (k, v) for k, v in message.fields.items()]
        return {
            "text": message.title,
            "attachments": [{
                "color": SLACK_COLOURS.get(message.severity, SLACK_COLOURS["info"]),
                "text": "\n".join([message.text] + lines) if message.text else "\n".join(lines),
            }],
        }

    def accepted(self, response):
        # Slack answers 200 "ok"; anything else in the body is an error code.
        return response.status_code == 200 and response.text.strip() in ("ok", "")


class TeamsChannel(HttpChannel):
    """Microsoft Teams incoming webhook (Office 365 connector card, which Workflows webhooks also take)."""

    def payload(self, message):
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message.title,
            "themeColor": SLACK_COLOURS.get(message.severity, SLACK_COLOURS["info"]).lstrip("#"),
            "title": message.title,
            "text": message.text.replace("\n", "<br>") if message.text else "",
            "sections": [{"facts": [{"name": k, "value": str(v)} for k, v in message.fields.items()]}] if message.fields else [],
        }


class PagerDutyChannel(HttpChannel):
    """PagerDuty Events API v2: trigger (or acknowledge/resolve) an alert by dedup key."""

    def url(self):
        return self.channel.get("url") or PAGERDUTY_EVENTS_URL

    def payload(self, message):
        action = self.channel.get("event_action") or "trigger"
        body = {"routing_key": self.channel["routing_key"], "event_action": action}
        if message.dedup_key:
            body["dedup_key"] = message.dedup_key
        if action == "trigger":
            body["payload"] = {
                "summary": message.title[:1024],
                "source": message.source,
                "severity": PAGERDUTY_SEVERITY.get(message.severity, "info"),
                "custom_details": dict(message.fields, text=message.text),
            }
        return body

    def receipt(self, response):
        try:
            return response.json().get("dedup_key")
        except ValueError:
            return None


class EmailChannel:
    """SMTP with STARTTLS or implicit TLS, and a login when a user is given."""

    def __init__(self, channel, timeout, verify):
        self.channel = channel
        self.timeout = timeout
        self.verify = verify

    def build(self, message):
        mail = EmailMessage()
        mail["Subject"] = message.title
        mail["From"] = self.channel["sender"]
        mail["To"] = ", ".join(self.channel["to"])
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(domain="sre.rollback")
        mail["X-Rollback-Severity"] = message.severity
        lines = [message.text] if message.text else []
        lines += ["%s: %s" % (k, v) for k, v in message.fields.items()]
        mail.set_content("\n".join(lines) + "\n")
        return mail

    def tls_context(self):
        if self.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if isinstance(self.verify, ssl.SSLContext):
            return self.verify
        return ssl.create_default_context()

    def send(self, message):
        host, port = self.channel["smtp_host"], self.channel.get("smtp_port") or 25
        security = self.channel.get("security") or "starttls"
        try:
            if security == "tls":
                server = smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=self.tls_context())
            else:
                server = smtplib.SMTP(host, port, timeout=self.timeout)
            with server:
                if security == "starttls":
                    server.starttls(context=self.tls_context())
                if self.channel.get("username"):
                    server.login(self.channel["username"], self.channel.get("password") or "")
                refused = server.send_message(self.build(message))
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError("the SMTP server refused the login (%s)" % error.smtp_code, status=error.smtp_code)
        except smtplib.SMTPResponseException as error:
            raise DeliveryError("the SMTP server answered %s" % error.smtp_code, status=error.smtp_code,
                                retryable=400 <= error.smtp_code < 500)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryError("could not deliver by SMTP (%s: %s)" % (type(error).__name__, error), retryable=True)
        if refused:
            raise DeliveryError("the SMTP server refused %s" % ", ".join(sorted(refused)))
        return {"status": 250, "receipt": None}


HTTP_CHANNELS = {"slack": SlackChannel, "teams": TeamsChannel, "webhook": HttpChannel, "pagerduty": PagerDutyChannel}


def validate_channel(channel):
    """Name what a channel lacks before anything is sent (returns a list of problems)."""
    kind = channel.get("type")
    if kind not in CHANNEL_TYPES:
        return ["type must be one of %s, got %r" % (", ".join(CHANNEL_TYPES), kind)]
    problems = []
    if kind in ("slack", "teams", "webhook") and not channel.get("url"):
        problems.append("a %s channel needs url (its incoming webhook URL)" % kind)
    if kind == "pagerduty" and not channel.get("routing_key"):
        problems.append("a pagerduty channel needs routing_key (the integration key of an Events API v2 integration)")
    if kind == "email":
        for key in ("smtp_host", "sender", "to"):
            if not channel.get(key):
                problems.append("an email channel needs %s" % key)
    url = channel.get("url")
    if url and urlsplit(url).scheme not in ("http", "https"):
        problems.append("url must be http(s)")
    return problems


class Notifier:
    """Send one message to every channel; never stop at the first failure."""

    def __init__(self, timeout=10.0, attempts=3, validate_certs=True, ca_path=None, sleep=time.sleep):
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.verify = ssl_verify(ca_bundle(validate_certs, ca_path))
        self.sleep = sleep

    def deliver(self, message, channels, check_mode=False):
        results = []
        client = None
        try:
            for channel in channels:
                entry = {"type": channel["type"], "target": describe_target(channel), "name": channel.get("name")}
                if check_mode:
                    entry.update(sent=False, would_send=True)
                    results.append(entry)
                    continue
                if channel["type"] != "email" and client is None:
                    client = httpx.Client(timeout=self.timeout, verify=self.verify)
                sender = (EmailChannel(channel, self.timeout, self.verify) if channel["type"] == "email"
                          else HTTP_CHANNELS[channel["type"]](channel, client))
                entry.update(self._send_with_retries(sender, message))
                results.append(entry)
        finally:
            if client is not None:
                client.close()
        return results

    def _send_with_retries(self, sender, message):
        started = time.monotonic()
        error = None
        for attempt in range(1, self.attempts + 1):
            try:
                outcome = sender.send(message)
            except DeliveryError as failure:
                error = failure
                if not failure.retryable or attempt == self.attempts:
                    break
                # Honour Retry-After within reason: a notification is not worth stalling a rollback for.
                self.sleep(min(failure.retry_after if failure.retry_after is not None else attempt, 10))
                continue
            return {"sent": True, "status": outcome["status"], "receipt": outcome["receipt"], "attempts": attempt,
                    "error": None, "duration_s": round(time.monotonic() - started, 3)}
        return {"sent": False, "status": error.status, "receipt": None, "attempts": attempt, "error": str(error),
                "duration_s": round(time.monotonic() - started, 3)}


def _retry_after(response):
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
