# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run playbooks/rollback-backend.yml through ansible_runner.run() the way AWX does, and check the job.

    python runner_job.py SCENARIO WORK_DIR INTEGRATION_CONFIG

SCENARIO is check, apply, again or swap_fails (see EXPECTED). The job gets a fresh private data
dir under WORK_DIR laid out as AWX lays it out: project/ (the collection's checkout, as AWX syncs
the project), inventory/ (the collection's inventory), env/extravars (the survey's answers),
env/envvars (the credentials AWX injects), artifacts/. The credentials reach the job only through
env/envvars: they are removed from this process's environment first.

Checked: status and rc; the job events (playbook_on_start first, playbook_on_stats last, the act
step's runner_on_ok or runner_on_failed, the recap's counts against the events themselves); no
sandbox secret in any event, the job's stdout or the incident record; the incident record the
recovery_timeline callback writes into the job's artifacts. Exits non-zero on the first failure.
"""

import glob
import json
import os
import re
import shutil
import sys
import time
from urllib.parse import urlsplit

import ansible_runner

HOST = "fundrbolt-api-sandbox"
PLAYBOOK = "playbooks/rollback-backend.yml"
ACT_TASK = "Act | swap the last known good build into production"
# What each job must show: status and rc; failures is the recap's count for HOST; act is the event
# the swap step must end in and whether it changed; verdict is the incident record's. The other
# counts of the recap are checked against the job's own events (check_stats).
EXPECTED = {
    # quick: without the pre-rollback checklist and the post-rollback verification, which take a
    # minute or more per job (the rollback_playbooks target covers them); the runner is the subject here.
    # A dry run: the swap step reports what it would do, and nothing verifies a swap that did not happen.
    "check": dict(quick=True, check=True, status="successful", rc=0, failures=0, act=("runner_on_ok", True), verdict="unverified"),
    "apply": dict(quick=True, check=False, status="successful", rc=0, failures=0, act=("runner_on_ok", True), verdict="met"),
    # Production already runs 1.4.1: the swap step is ok and unchanged, and health still verifies.
    "again": dict(quick=True, check=False, status="successful", rc=0, failures=0, act=("runner_on_ok", False), verdict="met"),
    # The sandbox ends the swap operation Failed: the playbook records it, tells the channels and fails the job.
    "swap_fails": dict(quick=True, check=False, status="failed", rc=2, failures=1, act=("runner_on_failed", False),
                       verdict="not_recovered"),
}
SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|_KEY|CONNECTION_STRING)$")


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def sandbox_env(config):
    """The sandbox's exported variables: what AWX credentials would inject into the job."""
    with open(config) as handle:
        return json.load(handle)["sandbox"]["env"]


def secrets_of(env):
    """Every credential value of the sandbox, including the passwords inside connection URLs."""
    found = {value for name, value in env.items() if SECRET_NAME.search(name) and value}
    for value in env.values():
        password = urlsplit(value).password if "://" in value else None
        if password:
            found.add(password)
    return {value for value in found if len(value) >= 8}


def leaks(paths, secrets):
    hits = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        hits += ["%s in %s" % (secret[:6] + "...", path) for secret in secrets if secret in text]
    return hits


def private_data_dir(work, scenario, root, env, incident_id, quick):
    pdd = os.path.join(work, "job-" + scenario)
    shutil.rmtree(pdd, ignore_errors=True)
    # project/: what AWX syncs from the project's SCM, the collection's playbooks and ansible.cfg
    # (which enables the recovery_timeline callback; the collection itself comes from the
    # execution environment, here ANSIBLE_COLLECTIONS_PATH).
    os.makedirs(os.path.join(pdd, "project"))
    shutil.copytree(os.path.join(root, "playbooks"), os.path.join(pdd, "project", "playbooks"))
    shutil.copy(os.path.join(root, "ansible.cfg"), os.path.join(pdd, "project", "ansible.cfg"))
    # inventory/: AWX writes the job's inventory here; its group_vars and host_vars come with it.
    shutil.copytree(os.path.join(root, "inventories"), os.path.join(pdd, "inventory"))
    os.makedirs(os.path.join(pdd, "env"))
    os.makedirs(os.path.join(pdd, "artifacts"))
    # The survey's answers. The rollback locks must outlive a job (under AWX a persistent volume),
    # here they outlive the four jobs; the post-rollback watch is cut from 15 minutes to seconds.
    extravars = {"env": "sandbox", "rollback_to_build": "1.4.1", "incident_id": incident_id,
                 "severity": "P1", "component": "backend",
                 "pre_rollback_checklist_lock_dir": os.path.join(work, "locks"), "post_rollback_watch_s": 3}
    if quick:
        extravars.update(pre_rollback_checklist=False, post_rollback_verify=False)
    envvars = dict(env)
    envvars.update({
        # AWX keeps the data dir only for the job; the record goes where the job's artifacts go.
        # (In production point it at a persistent volume instead.)
        "SRE_ROLLBACK_INCIDENT_DIR": os.path.join(pdd, "artifacts", "incidents"),
    })
    with open(os.path.join(pdd, "env", "extravars"), "w") as handle:
        json.dump(extravars, handle)
    with open(os.path.join(pdd, "env", "envvars"), "w") as handle:
        json.dump(envvars, handle)
    return pdd


def check_stats(events, expected):
    stats = events[-1]["event_data"]
    count = {key: stats.get(key, {}).get(HOST, 0) for key in ("ok", "changed", "failures", "rescued", "skipped")}
    check(count["failures"] == expected["failures"],
          "the recap says failures=%s for %s, expected %s" % (count["failures"], HOST, expected["failures"]))
    check(not stats.get("dark"), "a host was unreachable: %s" % stats.get("dark"))
    # The recap must agree with the events AWX stores: one runner_on_ok per ok task (changed ones
    # included), one changed result per changed, one runner_on_failed (not ignored) per failure or
    # rescue, one runner_on_skipped per skip.
    host_events = [event for event in events if event["event_data"].get("host") == HOST]
    seen = {name: [event for event in host_events if event["event"] == name]
            for name in ("runner_on_ok", "runner_on_failed", "runner_on_skipped")}
    failed = [event for event in seen["runner_on_failed"] if not event["event_data"].get("ignore_errors")]
    changed = sum(1 for event in seen["runner_on_ok"] if event["event_data"]["res"].get("changed"))
    for key, observed in (("ok", len(seen["runner_on_ok"])), ("changed", changed),
                          ("failures", len(failed) - count["rescued"]), ("skipped", len(seen["runner_on_skipped"]))):
        check(count[key] == observed, "the recap says %s=%s but the events say %s" % (key, count[key], observed))
    return host_events


def check_act_step(host_events, expected):
    kind, changed = expected["act"]
    act = [event for event in host_events
           if event["event_data"].get("task") == ACT_TASK and event["event"].startswith("runner_on_")
           and event["event"] != "runner_on_start"]
    check(len(act) == 1, "expected one result event for %r, got %s" % (ACT_TASK, [event["event"] for event in act]))
    data = act[0]["event_data"]
    check(act[0]["event"] == kind, "the act step ended in %s, expected %s" % (act[0]["event"], kind))
    check(data.get("resolved_action") == "sre.rollback.webapp_slot_swap",
          "the act step ran %s, expected sre.rollback.webapp_slot_swap" % data.get("resolved_action"))
    check(data.get("role") == "app_service_rollback", "the act step's role is %r" % data.get("role"))
    check(bool(data["res"].get("changed")) == changed, "the act step says changed=%s" % data["res"].get("changed"))
    if kind == "runner_on_failed":
        check("Failed" in data["res"].get("msg", ""), "the failed swap does not say why: %r" % data["res"].get("msg"))
    elif not expected["check"]:
        check(data["res"].get("swapped") == changed, "the act step says swapped=%s" % data["res"].get("swapped"))


def check_record(pdd, incident_id, expected, job_stdout):
    record_dir = os.path.join(pdd, "artifacts", "incidents", incident_id)
    check(os.path.isfile(os.path.join(record_dir, "incident.json")), "no incident record in %s" % record_dir)
    with open(os.path.join(record_dir, "incident.json")) as handle:
        record = json.load(handle)
    recovery = record["recovery"]
    check(recovery["verdict"] == expected["verdict"],
          "the record's verdict is %s (%s), expected %s" % (recovery["verdict"], recovery["reason"], expected["verdict"]))
    check(record["incident"]["incident_id"] == incident_id and record["incident"]["severity"] == "P1",
          "the survey's incident and severity are not in the record: %s" % record["incident"])
    # The record files the step under its phase, without the "Act | " prefix of the task name.
    act_steps = [step for step in record["steps"] if step["phase"] == "act" and step["module"] == "sre.rollback.webapp_slot_swap"]
    check(len(act_steps) == 1 and act_steps[0]["host"] == HOST and ACT_TASK.endswith(act_steps[0]["task"]),
          "the record's act steps are not the swap of %s: %s" % (HOST, act_steps))
    want_status = {"runner_on_ok": "changed" if expected["act"][1] else "ok", "runner_on_failed": "failed"}
    check(act_steps[0]["status"] == want_status[expected["act"][0]],
          "the record's act step is %s, expected %s" % (act_steps[0]["status"], want_status[expected["act"][0]]))
    if expected["verdict"] == "not_recovered":
        check(recovery["failed_hosts"] == [HOST], "failed hosts %s" % recovery["failed_hosts"])
    if expected["verdict"] == "met":
        # The job's own clock: the recovery cannot have taken longer than the whole job.
        check(0 < recovery["recovery_time_s"] <= record["duration_s"] + 0.5, "recovery time %s" % recovery)
    # AWX shows the job's stdout: the summary line must be there for whoever reads the job.
    check(re.search(r"%s: recovery .*%s" % (incident_id, expected["verdict"]), job_stdout),
          "the job output lacks the recovery summary of %s" % incident_id)
    return [os.path.join(record_dir, name) for name in os.listdir(record_dir)]


def main():
    scenario, work, config = sys.argv[1:4]
    expected = EXPECTED[scenario]
    root = os.getcwd()  # playbook_runner.sh runs from the collection root
    env = sandbox_env(config)
    secrets = secrets_of(env)
    check(len(secrets) >= 5, "found only %d sandbox secrets to look for" % len(secrets))
    # Only the data dir may hand the job its settings and credentials, as under AWX.
    for name in list(env) + ["ANSIBLE_CONFIG", "SRE_ROLLBACK_INCIDENT_DIR", "ANSIBLE_CALLBACKS_ENABLED"]:
        os.environ.pop(name, None)
    incident_id = "INC-8-%s" % scenario
    pdd = private_data_dir(work, scenario, root, env, incident_id, expected["quick"])

    started = time.time()
    runner = ansible_runner.run(private_data_dir=pdd, playbook=PLAYBOOK, ident=scenario, limit=HOST,
                                cmdline="--check" if expected["check"] else None, quiet=True)
    print("  ansible-runner job %s: %s rc=%s in %.1f s" % (scenario, runner.status, runner.rc, time.time() - started))
    artifact_dir = os.path.join(pdd, "artifacts", scenario)
    with open(os.path.join(artifact_dir, "stdout"), encoding="utf-8") as handle:
        job_stdout = handle.read()
    if (runner.status, runner.rc) != (expected["status"], expected["rc"]):
        print(job_stdout[-4000:])
        fail("the job ended %s rc=%s, expected %s rc=%s" % (runner.status, runner.rc, expected["status"], expected["rc"]))

    events = list(runner.events)
    names = [event["event"] for event in events]
    before_start = [event.get("stdout", "") for event in events[:names.index("playbook_on_start")]] \
        if "playbook_on_start" in names else names
    check(names[0] == "playbook_on_start", "events before playbook_on_start: %s" % before_start)
    check(names.count("playbook_on_stats") == 1, "%d playbook_on_stats events" % names.count("playbook_on_stats"))
    # After the recap only output lines (the callbacks' summaries), no further task.
    stats_at = names.index("playbook_on_stats")
    check(set(names[stats_at + 1:]) <= {"verbose"}, "events after the recap: %s" % names[stats_at + 1:])
    events = events[:stats_at + 1]
    check(events[0]["event_data"]["playbook"] == PLAYBOOK, "the job ran %s" % events[0]["event_data"].get("playbook"))
    host_events = check_stats(events, expected)
    check_act_step(host_events, expected)
    record_files = check_record(pdd, incident_id, expected, job_stdout)

    # No credential in what AWX keeps of a job (events, stdout) nor in the incident record.
    event_files = glob.glob(os.path.join(artifact_dir, "job_events", "*.json"))
    check(len(event_files) == len(names), "%d event files for %d events" % (len(event_files), len(names)))
    found = leaks(event_files + [os.path.join(artifact_dir, "stdout")] + record_files, secrets)
    check(not found, "secrets in the job's output: %s" % found)
    # The scan can find one: ansible-runner's own `command` artifact holds the job's whole environment,
    # credentials included (AWX does not keep it; a persistent incident volume must not take it either).
    check(leaks([os.path.join(artifact_dir, "command")], {env["AZURE_CLIENT_SECRET"]}),
          "the credentials never reached the job (not in runner's command artifact)")
    print("  %d events, recap and incident record (%s) as expected, no secret in them" % (len(events), expected["verdict"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
