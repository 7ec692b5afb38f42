#!/usr/bin/env bash
# The changelog fragments lint, and the release changelog generates from them and reads right:
# antsibull-changelog release runs on a throwaway copy of the collection (the checkout keeps its
# fragments until the release commit), then the generated changelog.yaml and CHANGELOG.rst are
# checked (see check_release below).
#
#   tools/check_changelog.sh             the version in galaxy.yml
#   tools/check_changelog.sh 0.2.0       another version
#
# Release practice: at release time a maintainer runs `antsibull-changelog release` in the
# checkout and commits changelogs/changelog.yaml, CHANGELOG.rst and the removed fragments together
# with the version bump and tag. Until then only fragments are committed, so that every change made
# before the release lands in it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.venv/bin"
version=${1:-$(sed -n 's/^version: *//p' "$root/galaxy.yml")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== antsibull-changelog lint"
(cd "$root" && "$bin/antsibull-changelog" lint)

echo "== antsibull-changelog release --version $version (in a copy)"
# ansible-doc (which antsibull-changelog asks for the plugins) needs ansible_collections/<ns>/<name>.
copy="$work/ansible_collections/sre/rollback"
mkdir -p "$copy"
# What git would commit: tracked and new files, less those deleted in the working tree.
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' path; do [ ! -f "$path" ] || printf '%s\0' "$path"; done |
  xargs -0 cp --parents -t "$copy")
(cd "$copy" && PATH="$bin:$PATH" "$bin/antsibull-changelog" release --version "$version" >"$work/release.log" 2>&1) \
  || { cat "$work/release.log"; echo "FAIL: antsibull-changelog release"; exit 1; }
(cd "$copy" && "$bin/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml)

"$bin/python" - "$copy" "$version" <<'PY'
"""What antsibull-changelog does not check itself.

* Every module and plugin of the collection is in the changelog of some release (a wrong or
  missing version_added leaves one out of "New Modules" silently).
* No fragment announces a module or plugin that is new in this release: antsibull-changelog
  already lists it (with its short_description) under New Modules / New Plugins, and a fragment
  line about a plugin nobody had before is noise or a duplicate.
* removed_features and deprecated_features name only plugins an earlier release had: nobody
  can lose what was never released.
* CHANGELOG.rst is valid reStructuredText (docutils, stopping at the first warning).
"""
import glob
import os
import re
import sys

import docutils.core
import docutils.utils
import yaml

copy, version = sys.argv[1], sys.argv[2]
problems = []
with open(os.path.join(copy, "changelogs", "changelog.yaml")) as handle:
    releases = yaml.safe_load(handle)["releases"]
release = releases[version]


def listed(entries):
    return {entry["name"] for entry in entries or []}


ever = {"module": set(), "callback": set(), "filter": set()}
before = {"module": set(), "callback": set(), "filter": set()}
for name, data in releases.items():
    for kind in ever:
        found = listed(data.get("modules")) if kind == "module" else listed(data.get("plugins", {}).get(kind))
        ever[kind] |= found
        if name != version:
            before[kind] |= found

for kind, directory in (("module", "modules"), ("callback", "callback"), ("filter", "filter")):
    present = {os.path.basename(path)[:-3] for path in glob.glob(os.path.join(copy, "plugins", directory, "*.py"))}
    present.discard("__init__")
    for name in sorted(present - ever[kind]):
        problems.append("%s %s is in no release of the changelog: is its version_added right?" % (kind, name))
new_now = (ever["module"] | ever["callback"] | ever["filter"]) - (before["module"] | before["callback"] | before["filter"])
known_before = before["module"] | before["callback"] | before["filter"]

# The fragments of this release (release() consumed them from the copy; read the checkout's).
changes = release.get("changes", {})
for section, entries in changes.items():
    if not isinstance(entries, list):
        continue
    for entry in entries:
        match = re.match(r"([\w.]+)(?: (?:module|callback|filter|plugin))? - ", entry)
        name = match.group(1).split(".")[-1] if match else None
        if section in ("removed_features", "deprecated_features"):
            if name not in known_before:
                problems.append("%s names %s, which no earlier release has: %r" % (section, name, entry[:90]))
        elif name in new_now:
            problems.append("%s announces %s, new in %s: antsibull-changelog lists it already: %r"
                            % (section, name, version, entry[:90]))

with open(os.path.join(copy, "CHANGELOG.rst")) as handle:
    rst = handle.read()
try:
    docutils.core.publish_doctree(rst, settings_overrides={"halt_level": docutils.utils.Reporter.WARNING_LEVEL,
                                                           "report_level": docutils.utils.Reporter.SEVERE_LEVEL})
except docutils.utils.SystemMessage as exc:
    problems.append("CHANGELOG.rst is not valid reStructuredText: %s" % exc)
if "v%s" % version not in rst:
    problems.append("CHANGELOG.rst has no section for v%s" % version)

for problem in problems:
    print("FAIL: " + problem)
if problems:
    sys.exit(1)
print("   %s: %d modules, %d plugins, %d change entries; CHANGELOG.rst is valid"
      % (version, len(release.get("modules", [])), sum(len(v) for v in release.get("plugins", {}).values()),
         sum(len(v) for v in changes.values() if isinstance(v, list))))
PY
echo "== the $version changelog generates and reads right"
