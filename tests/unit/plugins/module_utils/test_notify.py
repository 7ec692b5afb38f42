# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.sre.rollback.plugins.module_utils.notify import (
    DeliveryError,
    EmailChannel,
    Message,
    Notifier,
    PagerDutyChannel,
    SlackChannel,
    describe_target,
    validate_channel,
)

MESSAGE = Message("Rollback started", "Reason: 5xx", "critical", "rollback_started", {"Component": "Backend"}, "INC-1")


def test_slack_payload_has_the_title_as_text_and_a_colour_bar():
    payload = SlackChannel({"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}, None).payload(MESSAGE)
    assert payload["text"] == "Rollback started"
    assert payload["attachments"][0]["color"] == "#d00000"
    assert payload["attachments"][0]["text"] == "Reason: 5xx\nComponent: Backend"


def test_pagerduty_trigger_carries_summary_source_severity_and_dedup_key():
    channel = {"type": "pagerduty", "routing_key": "k" * 32}
    payload = PagerDutyChannel(channel, None).payload(MESSAGE)
    assert payload["event_action"] == "trigger"
    assert payload["dedup_key"] == "INC-1"
    assert payload["payload"]["summary"] == "Rollback started"
    assert payload["payload"]["severity"] == "critical"
    assert payload["payload"]["source"] == "sre.rollback"


def test_pagerduty_resolve_sends_no_payload():
    channel = {"type": "pagerduty", "routing_key": "k" * 32, "event_action": "resolve"}
    assert "payload" not in PagerDutyChannel(channel, None).payload(MESSAGE)


def test_email_has_subject_recipients_and_fields():
    mail = EmailChannel({"sender": "a@example.org", "to": ["b@example.org", "c@example.org"]}, 5, True).build(MESSAGE)
    assert mail["Subject"] == "Rollback started"
    assert mail["To"] == "b@example.org, c@example.org"
    assert "Component: Backend" in mail.get_content()


def test_targets_never_show_the_secret_part():
    assert describe_target({"type": "slack", "url": "https://hooks.slack.com/services/T/B/secret"}) == "slack via hooks.slack.com"
    assert describe_target({"type": "pagerduty", "routing_key": "secret"}) == "pagerduty via events.pagerduty.com"


def test_validation_names_what_each_channel_lacks():
    assert validate_channel({"type": "slack"}) == ["a slack channel needs url (its incoming webhook URL)"]
    assert "an email channel needs to" in validate_channel({"type": "email", "smtp_host": "h", "sender": "s"})
    assert validate_channel({"type": "webhook", "url": "ftp://x"}) == ["url must be http(s)"]
    assert validate_channel({"type": "sms"})[0].startswith("type must be one of")


class FlakySender:
    def __init__(self, failures):
        self.failures = list(failures)
        self.calls = 0

    def send(self, message):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"status": 200, "receipt": None}


def test_retryable_failures_are_tried_again_honouring_retry_after():
    waits = []
    notifier = Notifier(attempts=3, sleep=waits.append)
    sender = FlakySender([DeliveryError("busy", 429, True, retry_after=0.5), DeliveryError("down", 503, True)])
    result = notifier._send_with_retries(sender, MESSAGE)
    assert result["sent"] and result["attempts"] == 3
    assert waits == [0.5, 2]


def test_a_refusal_is_not_retried_and_is_reported():
    notifier = Notifier(attempts=3, sleep=lambda seconds: None)
    sender = FlakySender([DeliveryError("the receiver answered 404: no_service", 404, False)])
    result = notifier._send_with_retries(sender, MESSAGE)
    assert not result["sent"] and result["attempts"] == 1 and result["status"] == 404
    assert "no_service" in result["error"]
