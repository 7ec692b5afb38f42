# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Let ansible-test bootstrap pip without reaching ci-files.testing.ansible.com.

For every virtual environment it creates, ansible-test runs a cached copy of
pypa's get-pip.py (~/.ansible/test/cache/get_pip_<version>.py) and downloads
it when the cache is empty.  This machine only reaches the package index, so
we download the pip wheel with pip itself and put a small stand-in in that
cache: it runs pip straight from the wheel to install the requested pip.
"""

import os
import subprocess
import sys

STAND_IN = '''# Written by sre.rollback tools/offline_get_pip.py: a stand-in for get-pip.py.
# Runs pip from a wheel to install the pip that ansible-test asked for.
import sys
sys.path.insert(0, {wheel!r})
from pip._internal.cli.main import main
# get-pip.py options that pip install does not know
GET_PIP_ONLY = {{"--no-setuptools", "--no-wheel"}}
sys.exit(main(["install"] + [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]))
'''


def main():
    version = sys.argv[1] if len(sys.argv) > 1 else ansible_test_pip_version()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wheels = os.path.join(root, ".cache", "wheels")
    os.makedirs(wheels, exist_ok=True)
    wheel = os.path.join(wheels, "pip-%s-py3-none-any.whl" % version)
    if not os.path.exists(wheel):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", wheels, "pip==%s" % version], check=True)
    cache = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_"))
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache, "w") as handle:
        handle.write(STAND_IN.format(wheel=wheel))
    print(cache)
    return 0


def ansible_test_pip_version():
    """The pip version the installed ansible-test bootstraps into its venvs."""
    from ansible_test._internal.python_requirements import get_venv_packages
    from ansible_test._internal.host_configs import NativePythonConfig

    python = NativePythonConfig()
    python.version = "%d.%d" % sys.version_info[:2]
    return get_venv_packages(python)["pip"]


if __name__ == "__main__":
    sys.exit(main())
