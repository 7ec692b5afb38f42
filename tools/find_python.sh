#!/bin/sh
# Print the newest Python 3.12+ on this machine (the newest ansible-core needs
# it), looking at pyenv's own binaries first because its shims can be broken;
# fall back to whatever python3 there is.
for candidate in \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.14*/bin/python \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python \
    /usr/bin/python3.14 /usr/bin/python3.13 /usr/bin/python3.12 \
    /usr/local/bin/python3.13 /usr/local/bin/python3.12; do
  if [ -x "$candidate" ] && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    echo "$candidate"; exit 0
  fi
done
command -v python3
