# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollback_decision
short_description: Decide between rollback and fix forward from a severity and a situation
version_added: 0.1.0
author:
  - sre.rollback maintainers (@sre-rollback)
description:
  - Maps an incident severity (P1 to P4) and, optionally, a situation with its facts to what the
    runbooks say to do, the action, the procedures that carry it out, the time frame to act in
    and the recovery-time target.
  - The severities come from the decision matrix of sf-ai-assistant-rollback.md
    (P1 Service down, slot swap or revert last deploy within 15 min; P2 Degraded, revert config change
    or scale up within 30 min; P3 Feature bug, git revert and CI/CD redeploy within 2 hours; P4 Cosmetic,
    fix forward in the next sprint).
  - The recovery-time targets come from mvp011-blue-green-rollback-playbook.md
    (critical 2 min for P1, performance 5 min for P2, feature 15 min for P3, non-critical 30 min for P4).
  - The situations come from the rollback-or-fix-forward table of mystira-rollback.md.
    C(critical_outage) rolls back immediately; C(data_corruption) rolls back and investigates;
    C(minor_bug) fixes forward when C(fix_eta_minutes) is below 30, else rolls back;
    C(performance_degradation) rolls back when C(impact_percent) is above 20, else fixes forward.
  - When a situation is given, its verdict decides whether to roll back. The severity's own action
    and procedures stand when the situation agrees with the severity; otherwise the situation's action
    is used.
  - Every table is data that O(matrix) overrides per key; the defaults are in
    C(plugins/module_utils/policy.py) as C(DEFAULT_DECISION_MATRIX).
  - An unknown severity or situation, a fact a situation needs but was not given, or a malformed
    override fails the task with a message naming the accepted values.
positional: _input
options:
  _input:
    description:
      - The severity. C(P1), C(p1), C(1), C(sev1) and C(SEV-1) all mean C(P1).
      - Severities added through O(matrix) are accepted by their name.
    type: raw
    required: true
  situation:
    description:
      - What is happening, one of C(critical_outage), C(data_corruption), C(minor_bug),
        C(performance_degradation), or a situation added through O(matrix).
      - Spaces and dashes count as underscores, so C(Minor bug) is C(minor_bug).
      - Leave it out to decide on the severity alone.
    type: str
  facts:
    description:
      - The numbers a situation rule needs, keyed by name, such as C(fix_eta_minutes) for C(minor_bug)
        or C(impact_percent) for C(performance_degradation);
        see the examples.
      - Numbers given as strings (C("35"), C("35%")) are accepted.
    type: dict
    default: {}
  matrix:
    description:
      - Overrides merged over the default policy, per key. A dict with the keys C(severities) and C(situations).
      - Under C(severities) each name (C(P1) to C(P4), or a new one) maps to fields merged over the default
        entry, from C(label), C(rollback) (bool), C(action), C(procedures) (list), C(time_frame) (text),
        C(time_frame_s) (int or null), C(recovery_class) and C(recovery_target_s) (int or null).
        A new severity must give every field.
      - Under C(situations) each name maps to fields merged over the default rule, from C(label), C(fact)
        (the key in O(facts)), C(compare) (C(lt), C(le), C(gt) or C(ge)), C(threshold) (number),
        C(then) and C(otherwise) (outcomes with C(rollback), C(action) and C(investigate)).
        A rule without C(fact) always applies C(then).
    type: dict
    default: {}
notes:
  - The filter only decides; acting on the decision is the job of the roles and modules of the collection.
seealso:
  - module: sre.rollback.webapp_slot_swap
  - module: sre.rollback.git_revert
"""

EXAMPLES = r"""
- name: What does a P1 call for
  ansible.builtin.debug:
    msg: "{{ 'P1' | sre.rollback.rollback_decision }}"
  # action 'Slot swap or revert last deploy', time_frame 'within 15 min', recovery_target_s 120

- name: Decide on a performance degradation affecting 35 percent of requests
  ansible.builtin.set_fact:
    decision: >-
      {{ severity | sre.rollback.rollback_decision(situation='performance_degradation',
                                                   facts={'impact_percent': 35}) }}

- name: Say why in the job output
  ansible.builtin.debug:
    msg: "{{ decision.reason }}"

- name: Run the rollback only when the decision says so
  ansible.builtin.include_role:
    name: sre.rollback.app_service_rollback
  when: decision.rollback and 'slot_swap' in decision.procedures

- name: A minor bug that takes 45 minutes to fix is rolled back instead
  ansible.builtin.debug:
    msg: "{{ 'p3' | sre.rollback.rollback_decision(situation='minor_bug', facts={'fix_eta_minutes': 45}) }}"

- name: Our own policy, roll back above 10 percent impact and give P2 only 20 minutes
  vars:
    my_policy:
      severities:
        P2:
          time_frame: within 20 min
          time_frame_s: 1200
      situations:
        performance_degradation:
          threshold: 10
  ansible.builtin.debug:
    msg: >-
      {{ 'P2' | sre.rollback.rollback_decision(situation='performance_degradation',
                                               facts={'impact_percent': 15}, matrix=my_policy) }}
"""

RETURN = r"""
_value:
  description: The decision.
  type: dict
  contains:
    severity:
      description: The severity, normalised (C(sev1) becomes C(P1)).
      type: str
      sample: P1
    label:
      description: The severity's name in the runbook.
      type: str
      sample: Service down
    rollback:
      description: Whether to roll back (V(false) means fix forward).
      type: bool
      sample: true
    action:
      description: What to do, in the runbook's words.
      type: str
      sample: Slot swap or revert last deploy
    procedures:
      description:
        - The rollback procedures that carry out the action, in order of preference, empty when not rolling back.
        - The defaults name C(slot_swap), C(redeploy_previous), C(config_revert), C(scale_up) and C(code_revert).
      type: list
      elements: str
      sample: [slot_swap, redeploy_previous]
    investigate:
      description: Whether the situation also calls for an investigation (C(data_corruption)).
      type: bool
      sample: false
    time_frame:
      description: The time frame to act in, as text.
      type: str
      sample: within 15 min
    time_frame_s:
      description: The time frame in seconds, null when it is not a duration (C(next release)).
      type: int
      sample: 900
    recovery_class:
      description: The recovery-time class of mvp011 (C(critical), C(performance), C(feature), C(non_critical)).
      type: str
      sample: critical
    recovery_target_s:
      description: The recovery-time target in seconds.
      type: int
      sample: 120
    situation:
      description: The situation applied, normalised, or null.
      type: str
      sample: performance_degradation
    rule:
      description: The situation rule applied and its inputs, null without a situation.
      type: dict
      sample:
        name: performance_degradation
        label: Performance degradation
        fact: impact_percent
        value: 35
        compare: gt
        threshold: 20
        matched: true
        outcome: Roll back
    reason:
      description: One sentence a person reads in the job output saying what was decided and why.
      type: str
      sample: >-
        P2 (Degraded), Performance degradation with impact_percent 35 > 20: roll back
        (revert config change or scale up) within 30 min. Recovery target 5 min (performance).
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.rollback.plugins.module_utils.policy import PolicyError, decide


def rollback_decision(severity, situation=None, facts=None, matrix=None):
    """Filter entry point: see DOCUMENTATION."""
    try:
        return decide(severity, situation=situation, facts=facts or {}, matrix=matrix or None)
    except PolicyError as exc:
        raise AnsibleFilterError("rollback_decision: %s" % exc) from None


class FilterModule:
    """sre.rollback decision filters."""

    def filters(self):
        return {"rollback_decision": rollback_decision}
