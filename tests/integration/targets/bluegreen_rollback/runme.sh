#!/usr/bin/env bash
# A script target rather than a role target: ansible-test would run a role target
# named bluegreen_rollback as `roles: [bluegreen_rollback]`, which resolves to the
# collection's own role of that name instead of these tests.
set -eux
# Role targets get integration_config.yml (the `sandbox` dict) as vars_files; a script passes it itself.
ansible-playbook runme.yml -i "${INVENTORY_PATH}" -e @../../integration_config.yml "$@"
