"""Put the awx.awx collection in .cache/awx-collections without installing the `ansible` package.

awx.awx is not on this project's package registries by itself, and it is not worth the whole
`ansible` package in .venv: the newest `ansible` that still bundles it (13.x; it was removed in 14)
is downloaded once as a wheel into .cache/wheels, and only ansible_collections/awx/awx is unpacked.
Prints the collections path to give ANSIBLE_COLLECTIONS_PATH (after this tree's own).

    python tools/awx_collection.py            # -> /path/to/.cache/awx-collections
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".cache" / "wheels"
TARGET = ROOT / ".cache" / "awx-collections"
PREFIX = "ansible_collections/awx/awx/"
# The last `ansible` major with awx.awx in it.
ANSIBLE_SPEC = "ansible>=13,<14"


def ansible_wheel():
    found = sorted(WHEELS.glob("ansible-13.*-py3-none-any.whl"))
    if not found:
        WHEELS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary=:all:", "--dest", str(WHEELS), ANSIBLE_SPEC], check=True)
        found = sorted(WHEELS.glob("ansible-13.*-py3-none-any.whl"))
    if not found:
        raise SystemExit("pip did not leave an ansible 13 wheel in %s" % WHEELS)
    return found[-1]


def unpack(wheel):
    collection = TARGET / PREFIX
    stamp = TARGET / ".from-wheel"
    if stamp.exists() and stamp.read_text() == wheel.name and (collection / "MANIFEST.json").exists():
        return
    shutil.rmtree(TARGET, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(PREFIX) and not name.endswith("/"):
                archive.extract(name, TARGET)
    version = json.loads((collection / "MANIFEST.json").read_text())["collection_info"]["version"]
    stamp.write_text(wheel.name)
    print("awx.awx %s from %s" % (version, wheel.name), file=sys.stderr)


def main():
    unpack(ansible_wheel())
    print(TARGET)


if __name__ == "__main__":
    main()
