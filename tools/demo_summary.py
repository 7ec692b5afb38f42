# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo's last word: what happened, how long each step took, and proof
that production is back on the good build.  Exits non-zero if it is not."""

import glob
import json
import os
import ssl
import sys
import urllib.request


def main(timeline_dir, health_url, expected_image):
    print("\n== What happened")
    for number, path in enumerate(sorted(glob.glob(os.path.join(timeline_dir, "timeline-*.json"))), 1):
        with open(path) as handle:
            timeline = json.load(handle)
        for host, entry in timeline["hosts"].items():
            print("\nrun %d: %s on %s, started %s, %.1fs in all" % (
                number, timeline["playbook"], host, timeline["started"], entry["total_s"]))
            for step in entry["steps"]:
                if step["phase"] in ("Act", "Verify", "Detect") or step["status"].startswith("failed"):
                    print("  +%6.2fs  %6.2fs  %-6s  %-68s %s" % (
                        step["offset_s"], step["duration_s"], step["phase"], step["task"][:68], step["status"]))
            totals = ", ".join("%s %.1fs" % item for item in entry["phase_totals_s"].items())
            print("  time by phase: %s" % totals)
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
