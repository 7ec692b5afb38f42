#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: notify
short_description: Tell people about a rollback on Slack, Microsoft Teams, a webhook, email or PagerDuty
version_added: 0.1.0
description:
  - Sends one message (a title, a text and a few fields) to every channel given, each in its own format
    (Slack incoming webhook, Microsoft Teams incoming webhook, generic JSON webhook, email over SMTP,
    PagerDuty Events API v2). This is the "notify stakeholders" step of the runbooks and the
    mvp011 alert channels (critical to PagerDuty, warning to email, info to chat).
  - B(A notification never stops a rollback.) Every channel is tried; a channel that fails is recorded in
    RV(channels) with what the receiver answered, and the task fails only with O(fail_on_error=true).
    Busy receivers (408, 429 with C(Retry-After), 5xx, timeouts, refused connections) are tried again, up
    to O(attempts) times.
  - The role M(sre.rollback.notify) renders the runbooks' message templates and picks the channels by
    severity; use this module directly for a message of your own.
  - Sending is an action, not a state, so the task reports a change whenever something was sent.
author:
  - sre.rollback maintainers (@sre-rollback)
attributes:
  check_mode:
    support: full
    description: Checks every channel's settings and sends nothing; RV(channels) lists what would be sent where.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
options:
  title:
    description: The headline (Slack text, Teams card title, email subject, PagerDuty summary).
    type: str
    required: true
  text:
    description: The body, several lines allowed.
    type: str
    default: ""
  severity:
    description: How urgent the message is; also the PagerDuty severity and the chat colour.
    type: str
    choices: [critical, warning, info]
    default: info
  event:
    description: What happened, for receivers that sort messages (for example V(rollback_started)).
    type: str
  fields:
    description: Name and value pairs shown under the text (environment, component, durations).
    type: dict
    default: {}
  dedup_key:
    description:
      - PagerDuty's deduplication key; use the incident id so that the rollback's messages update one alert,
        and a C(resolve) closes it.
    type: str
  channels:
    description: Where to send the message.
    type: list
    elements: dict
    required: true
    suboptions:
      type:
        description: The kind of receiver.
        type: str
        required: true
        choices: [slack, teams, webhook, email, pagerduty]
      name:
        description: A label for the results (for example V(#devops)).
        type: str
      url:
        description:
          - The incoming webhook URL (Slack, Teams, webhook), a secret.
          - For PagerDuty, the Events API endpoint; defaults to C(https://events.pagerduty.com/v2/enqueue).
        type: str
      headers:
        description: Extra HTTP headers for a generic webhook (for example an authorization header).
        type: dict
      routing_key:
        description: The PagerDuty integration key (Events API v2), a secret.
        type: str
      event_action:
        description: The PagerDuty event action.
        type: str
        choices: [trigger, acknowledge, resolve]
        default: trigger
      smtp_host:
        description: The SMTP server (email).
        type: str
      smtp_port:
        description: The SMTP port (email).
        type: int
        default: 587
      security:
        description: V(starttls) upgrades a plain connection, V(tls) connects with TLS from the start (port 465), V(none) sends in clear.
        type: str
        choices: [starttls, tls, none]
        default: starttls
      username:
        description: The SMTP login, if the server needs one.
        type: str
      password:
        description: The SMTP password, a secret.
        type: str
      sender:
        description: The From address (email).
        type: str
      to:
        description: The recipients (email).
        type: list
        elements: str
  fail_on_error:
    description: Fail the task when any channel could not take the message (after its retries).
    type: bool
    default: false
  attempts:
    description: Tries per channel for busy or unreachable receivers.
    type: int
    default: 3
  timeout:
    description: Seconds to wait for each receiver to answer.
    type: float
    default: 10
  validate_certs:
    description: Verify TLS certificates of the receivers.
    type: bool
    default: true
  ca_path:
    description: A CA bundle to trust for the receivers; by default E(SSL_CERT_FILE) or E(REQUESTS_CA_BUNDLE) when set.
    type: path
notes:
  - Webhook URLs, routing keys and passwords are not logged and never appear in the results; channels are
    named by type and host.
seealso:
  - module: sre.rollback.health_check
requirements:
  - httpx
"""

EXAMPLES = r"""
- name: Tell the team the rollback started (fundrbolt "Internal Team Notification")
  sre.rollback.notify:
    title: "Production rollback initiated: backend"
    text: "Reason: health check failed after deploy 1.6.0"
    severity: critical
    event: rollback_started
    dedup_key: INC-1234
    fields:
      Component: Backend
      Started: "{{ now(utc=true).isoformat() }}"
    channels:
      - type: slack
        name: "#devops"
        url: "{{ slack_devops_webhook }}"
      - type: pagerduty
        routing_key: "{{ pagerduty_routing_key }}"
      - type: email
        smtp_host: smtp.office365.com
        username: alerts@example.org
        password: "{{ smtp_password }}"
        sender: alerts@example.org
        to: [oncall@example.org]
  register: told

- name: Resolve the PagerDuty alert when the service is healthy again
  sre.rollback.notify:
    title: "Rollback completed: backend healthy"
    severity: info
    dedup_key: INC-1234
    channels:
      - type: pagerduty
        routing_key: "{{ pagerduty_routing_key }}"
        event_action: resolve
"""

RETURN = r"""
channels:
  description: One entry per channel, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description: The channel type.
      type: str
    name:
      description: The channel's label, if given.
      type: str
    target:
      description: Type and host (or SMTP server and recipients), never the secret part of a URL.
      type: str
    sent:
      description: Whether the receiver took the message.
      type: bool
    status:
      description: The receiver's last HTTP status or SMTP code.
      type: int
    attempts:
      description: Tries made.
      type: int
    error:
      description: Why the message was not taken, else null.
      type: str
    receipt:
      description: The PagerDuty dedup key the event was filed under, else null.
      type: str
sent:
  description: How many channels took the message.
  returned: always
  type: int
undelivered:
  description: How many channels did not take the message (named so, because C(failed) is Ansible's own key).
  returned: always
  type: int
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError, RollbackModule
from ansible_collections.sre.rollback.plugins.module_utils.notify import (
    CHANNEL_TYPES,
    HTTPX_IMPORT_ERROR,
    SEVERITIES,
    Message,
    Notifier,
    validate_channel,
)

CHANNEL_SPEC = dict(
    type=dict(type="str", required=True, choices=list(CHANNEL_TYPES)),
    name=dict(type="str"),
    url=dict(type="str", no_log=True),
    headers=dict(type="dict", no_log=True),
    routing_key=dict(type="str", no_log=True),
    event_action=dict(type="str", default="trigger", choices=["trigger", "acknowledge", "resolve"]),
    smtp_host=dict(type="str"),
    smtp_port=dict(type="int", default=587),
    security=dict(type="str", default="starttls", choices=["starttls", "tls", "none"]),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    sender=dict(type="str"),
    to=dict(type="list", elements="str"),
)


def main():
    module = RollbackModule(
        argument_spec=dict(
            title=dict(type="str", required=True),
            text=dict(type="str", default=""),
            severity=dict(type="str", default="info", choices=list(SEVERITIES)),
            event=dict(type="str"),
            fields=dict(type="dict", default={}),
            dedup_key=dict(type="str", no_log=False),
            channels=dict(type="list", elements="dict", required=True, options=CHANNEL_SPEC),
            fail_on_error=dict(type="bool", default=False),
            attempts=dict(type="int", default=3),
            timeout=dict(type="float", default=10),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    module.require_libraries([("httpx", HTTPX_IMPORT_ERROR)])
    params = module.params

    def notify():
        problems = ["channel %d (%s): %s" % (index + 1, channel["type"], problem)
                    for index, channel in enumerate(params["channels"]) for problem in validate_channel(channel)]
        if problems:
            raise RollbackError("Nothing was sent; fix the channels first: " + "; ".join(problems))
        message = Message(params["title"], params["text"], params["severity"], params["event"], params["fields"],
                          params["dedup_key"])
        notifier = Notifier(params["timeout"], params["attempts"], params["validate_certs"], params["ca_path"])
        results = notifier.deliver(message, params["channels"], module.check_mode)
        sent = sum(1 for r in results if r.get("sent"))
        undelivered = 0 if module.check_mode else len(results) - sent
        outcome = dict(channels=results, sent=sent, undelivered=undelivered)
        if undelivered and params["fail_on_error"]:
            raise RollbackError(
                "%d of %d channels did not take the message: %s" % (
                    undelivered, len(results), "; ".join("%s: %s" % (r["target"], r["error"]) for r in results if not r["sent"])),
                **outcome)
        if undelivered:
            module.warn("%d of %d channels did not take the message (see channels); the rollback goes on."
                        % (undelivered, len(results)))
        return (sent > 0 or (module.check_mode and bool(results))), outcome

    module.run(notify)


if __name__ == "__main__":
    main()
