# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo's last word: what happened, how long each step took (from each run's
incident record, written by the recovery_timeline callback), and proof that
production is back on the good build.  Exits non-zero if it is not."""

import glob
import json
import os
import ssl
import sys
import urllib.request

# The steps a person watching the demo cares about; a failed step is always shown.
SHOWN_PHASES = ("detect", "act", "verify")


def main(incident_dir, health_url, expected_image):
    print("\n== What happened")
    records = []
    for path in glob.glob(os.path.join(incident_dir, "*", "incident.json")):
        with open(path) as handle:
            records.append(json.load(handle))
    if not records:
        print("DEMO FAILED: no incident record in %s (is the recovery_timeline callback enabled?)" % incident_dir)
        return 1
    for number, record in enumerate(sorted(records, key=lambda item: item["started"]), 1):
        recovery = record["recovery"]
        print("\nrun %d: %s (%s), started %s, %.1fs in all; %s" % (
            number, record["playbook"], record["incident"]["incident_id"] or "no incident id", record["started"],
            record["duration_s"], recovery["reason"]))
        for step in record["steps"]:
            if step["status"] != "skipped" and (step["phase"] in SHOWN_PHASES or step["status"] == "failed"):
                status = step["status"] + (" (ignored)" if step["ignored"] else "")
                print("  +%6.2fs  %6.2fs  %-6s  %-68s %s" % (
                    step["offset_s"], step["duration_s"], step["phase"], step["task"][:68], status))
        busy = ["%s %.1fs" % (phase["phase"], phase["busy_s"]) for phase in record["phases"]]
        print("  time by phase: %s" % ", ".join(busy))
    print("\n(Each run's full record, JSON, Markdown and HTML with a timeline chart, was in %s; a playbook run"
          " outside the demo keeps its own in ./incidents or $SRE_ROLLBACK_INCIDENT_DIR.)" % incident_dir)
    context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    with urllib.request.urlopen(health_url, context=context, timeout=10) as response:
        body = json.load(response)
    print("\n== Production now: %s -> %s" % (health_url, json.dumps(body)))
    if body.get("image") != expected_image or body.get("status") != "healthy":
        print("DEMO FAILED: production should run %s and be healthy" % expected_image)
        return 1
    print("Production runs %s and is healthy: the bad build was swapped back automatically." % expected_image)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
