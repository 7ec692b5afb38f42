# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mirror the collection into ~/.cache/sre-rollback/<id>/ansible_collections/sre/rollback.

ansible-test only runs from a directory named ansible_collections/<ns>/<name>,
and the repository is not one.  The mirror holds exactly the files git would
commit (tracked plus untracked-but-not-ignored), so sanity checks what lands
and never its own tests/output venvs, which the mirror keeps between runs.
"""

import filecmp
import hashlib
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Outside the repository: inside it, ansible-test would find the repository's
# .git, ask git for the files, and get none (the mirror is git-ignored).
DEST = os.path.join(
    os.environ.get("SRE_ROLLBACK_STAGE") or os.path.join(
        os.path.expanduser("~/.cache/sre-rollback"), hashlib.sha1(ROOT.encode()).hexdigest()[:10]),
    "ansible_collections", "sre", "rollback",
)
KEEP = ("tests/output/",)


def wanted_files():
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()
    return {path for path in listing.split("\0") if path and os.path.isfile(os.path.join(ROOT, path))}


def main():
    files = wanted_files()
    for path in sorted(files):
        source, target = os.path.join(ROOT, path), os.path.join(DEST, path)
        if os.path.exists(target) and filecmp.cmp(source, target, shallow=False):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
    for directory, _subdirs, names in os.walk(DEST, topdown=False):
        for name in names:
            relative = os.path.relpath(os.path.join(directory, name), DEST)
            if relative not in files and not relative.startswith(KEEP):
                os.remove(os.path.join(directory, name))
        if directory != DEST and not os.listdir(directory):
            os.rmdir(directory)
    print(DEST)
    return 0


if __name__ == "__main__":
    sys.exit(main())
