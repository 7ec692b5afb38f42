# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check an incident record written by the recovery_timeline callback.

    python check_record.py recovered|missed RECORD_DIR    (a run of recovery.yml)
    python check_record.py not_recovered RECORD_DIR       (quiet.yml with -e break_verify=true)

Exits non-zero with the reason on the first check that fails.
"""

import json
import os
import sys
from html.parser import HTMLParser

# Each step of recovery.yml: (phase, how the phase was found, status, the least it can take).
# The upper bound is generous: the machine is shared, and a module run costs ~0.3-3 s on top.
EXPECTED = [
    ("Look at the failing health endpoint", "detect", "tag on the task", "ok", 0.5),
    ("Decide with the P1-P4 matrix", "decide", "rollback_phase on the enclosing play", "ok", 0.0),
    ("Wait for the change window", "decide", "rollback_phase on the enclosing play", "ok", 1.0),
    ("Swap the good build back into production", "act", "rollback_phase on the enclosing block", "changed", 1.0),
    ("Rotate the deploy token", "act", "rollback_phase on the enclosing block", "changed", 0.0),
    ("Purge a CDN that is not there", "act", "rollback_phase on the enclosing block", "failed", 0.0),
    ("production answers healthy again", "verify", "name prefix of the task", "ok", 0.3),
    ("Production's health endpoint agrees", "verify", "module health_check (after the first act step)", "ok", 0.2),
    ("Tell the incident channel", "notify", "tag on the task", "ok", 0.0),
    ("Page nobody (skipped)", None, None, "skipped", 0.0),
]
SLACK_S = 8.0
SECRET = "hunter2-sandbox-token"


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


class StrictHTML(HTMLParser):
    """Every element closed in order; no attribute that would load anything."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "area", "base", "col", "embed", "track"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.loads, self.tags = [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.loads += [(tag, name, value) for name, value in attrs if name in ("src", "href", "xlink:href", "action")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)
        self.loads += [(tag, name, value) for name, value in attrs if name in ("src", "href", "xlink:href", "action")]

    def handle_endtag(self, tag):
        check(self.stack and self.stack[-1] == tag, "HTML closes </%s> while %s is open" % (tag, self.stack[-1:]))
        self.stack.pop()


def read(directory):
    texts = {}
    for name in ("incident.json", "incident.md", "incident.html"):
        path = os.path.join(directory, name)
        check(os.path.isfile(path), "%s was not written" % path)
        with open(path, encoding="utf-8") as handle:
            texts[name] = handle.read()
    leftovers = sorted(set(os.listdir(directory)) - set(texts))
    check(not leftovers, "temporary files left behind: %s" % leftovers)
    for name, text in texts.items():
        check(SECRET not in text, "the no_log task's secret is in %s" % name)
    return json.loads(texts["incident.json"]), texts["incident.md"], texts["incident.html"]


def check_steps(data, expected):
    steps = data["steps"]
    check([step["task"] for step in steps] == [row[0] for row in expected],
          "steps %s, expected %s" % ([step["task"] for step in steps], [row[0] for row in expected]))
    for step, (name, phase, source, status, least) in zip(steps, expected):
        if phase:
            check((step["phase"], step["phase_source"]) == (phase, source),
                  "%s: phase %s (%s), expected %s (%s)" % (name, step["phase"], step["phase_source"], phase, source))
        check(step["status"] == status, "%s: status %s, expected %s" % (name, step["status"], status))
        if status != "skipped":
            check(least <= step["duration_s"] <= least + SLACK_S,
                  "%s took %.3f s, expected %.1f s to %.1f s" % (name, step["duration_s"], least, least + SLACK_S))
    # Steps follow one another on one host: none starts before the previous one ended.
    for before, after in zip(steps, steps[1:]):
        check(after["offset_s"] + 1e-3 >= before["offset_s"] + before["duration_s"],
              "%s starts before %s ended" % (after["task"], before["task"]))
    quiet = steps[4]
    check(quiet["no_log"] and quiet["module"] is None and "result" not in quiet and "message" not in quiet,
          "the no_log step kept more than its name, status and timing: %s" % quiet)
    check(steps[5]["ignored"] and steps[5]["message"], "the ignored failure lost its flag or message")
    check(steps[3]["result"] == {"rc": 0}, "swap step result %s, expected only rc" % steps[3].get("result"))
    return steps


def check_reports(data, markdown, page):
    parser = StrictHTML()
    parser.feed(page)
    parser.close()
    check(not parser.stack, "HTML leaves %s open" % parser.stack)
    check(not parser.loads, "HTML loads something: %s" % parser.loads)
    check("script" not in parser.tags and "svg" in parser.tags, "HTML has a script or no chart")
    check("url(" not in page and "@import" not in page, "HTML CSS fetches something")
    headline = "# Incident %s: " % data["incident"]["incident_id"]
    check(markdown.startswith(headline), "Markdown starts %r, expected %r" % (markdown[:60], headline))
    for step in data["steps"]:
        check("| %s |" % step["task"] in markdown, "Markdown lacks the step %s" % step["task"])
        check(step["task"].replace("'", "&#x27;") in page, "HTML lacks the step %s" % step["task"])


def main():
    case, directory = sys.argv[1], sys.argv[2]
    data, markdown, page = read(directory)
    recovery = data["recovery"]
    check(data["incident"]["severity"] == "P1", "severity %s, expected P1" % data["incident"]["severity"])
    check(recovery["target_s"] == 120, "P1 target %s, expected 120 s from rollback_decision" % recovery["target_s"])
    if case == "not_recovered":
        # quiet.yml with break_verify: its verify step fails, so the run is not recovered.
        steps = data["steps"]
        check([(step["phase"], step["status"]) for step in steps] == [
            ("detect", "ok"), ("act", "changed"), ("verify", "failed")], "steps %s" % steps)
        check(steps[2]["message"] == "production answers 503 on /health", "message %r" % steps[2].get("message"))
        check(recovery["verdict"] == "not_recovered" and recovery["recovery_time_s"] is None,
              "verdict %s / %s, expected not_recovered / null" % (recovery["verdict"], recovery["recovery_time_s"]))
        check(recovery["reason"] == "the run failed: production answers healthy on localhost failed "
              "(production answers 503 on /health)", "reason does not name the failed step: %s" % recovery["reason"])
        check("not recovered" in markdown.splitlines()[0] and 'class="verdict bad"' in page,
              "reports do not say not recovered")
        check_reports(data, markdown, page)
        return
    check(data["incident"]["component"] == "checkout-api" and data["incident"]["env"] == "sandbox",
          "incident metadata %s" % data["incident"])
    steps = check_steps(data, EXPECTED)
    detect_start = data["origin"] if case == "missed" else steps[0]["started"]
    check(recovery["detected_at"][:19] == detect_start[:19],
          "detected_at %s, expected %s" % (recovery["detected_at"], detect_start))
    # Recovery ends with the last verify step that succeeded, the health check.
    check(recovery["recovered_at"] == steps[7]["ended"],
          "recovered_at %s, expected the health check's end %s" % (recovery["recovered_at"], steps[7]["ended"]))
    spent = steps[7]["offset_s"] + steps[7]["duration_s"]
    if case == "recovered":
        check(recovery["detected_from"] == "first detect step", "detected from %s" % recovery["detected_from"])
        expected_time = spent - steps[0]["offset_s"]
        check(abs(recovery["recovery_time_s"] - expected_time) < 0.01,
              "recovery %.3f s, expected %.3f s" % (recovery["recovery_time_s"], expected_time))
        check(recovery["recovery_time_s"] >= 3.0, "recovery %.3f s is shorter than its sleeps" % recovery["recovery_time_s"])
        check(recovery["verdict"] == "met", "verdict %s, expected met" % recovery["verdict"])
        check('class="verdict good"' in page and "target met" in markdown.splitlines()[0], "reports do not say met")
        phases = [phase["phase"] for phase in data["phases"]]
        check(phases == ["detect", "decide", "act", "verify", "notify"], "phases %s" % phases)
    elif case == "missed":
        # detected_at was given 130 s before the run: the clock starts there, and 130 s > 120 s.
        check(recovery["detected_from"] == "detected_at", "detected from %s" % recovery["detected_from"])
        check(abs(recovery["recovery_time_s"] - spent) < 0.01 and recovery["recovery_time_s"] > 130,
              "recovery %.3f s, expected %.3f s" % (recovery["recovery_time_s"], spent))
        check(recovery["verdict"] == "missed", "verdict %s, expected missed" % recovery["verdict"])
        check('class="verdict bad"' in page and "target missed" in markdown.splitlines()[0], "reports do not say missed")
    check_reports(data, markdown, page)


if __name__ == "__main__":
    main()
