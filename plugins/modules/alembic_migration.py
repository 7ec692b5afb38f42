#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: alembic_migration
short_description: Report, downgrade or upgrade an application's alembic migrations with the application's own alembic
version_added: 0.1.0
description:
  - The fundrbolt runbook's "Rollback Migration" (C(alembic current), C(alembic history),
    C(alembic downgrade -1) or to a revision, C(alembic current) again) as one task, with the checks the
    runbook leaves to the person at the keyboard.
  - Runs the application's own alembic, in the application's own Python environment (O(python)), from the
    application's directory (O(app_path)) with its C(alembic.ini), because C(env.py) imports the application.
    Run the task on the host where the application lives.
  - Always returns the current revision, the heads and the history, each revision with whether it has a real
    downgrade.
  - Before a downgrade it resolves the target, checks that the target is below the current revision and that
    every step on the way has a real C(downgrade()) (missing, only C(pass), or raising C(NotImplementedError)
    counts as none), and fails naming the revision before anything changes.
  - Idempotent by desired state, the database already at the target revision is no change. A relative
    target (V(-1), V(-2)) counts steps down from the head of the migration scripts, not from the database's
    current revision as C(alembic downgrade -1) does, so running the same task twice downgrades once.
  - In check mode it returns the SQL that would run (alembic's offline C(--sql) mode) and changes nothing.
  - With O(backup_path) it takes a C(pg_dump) (custom format) before a downgrade and fails before changing
    anything if the dump fails.
author:
  - sre.rollback maintainers (@sre-rollback)
options:
  app_path:
    description: The application's directory (the working directory alembic runs in).
    type: path
    required: true
  config:
    description: The alembic configuration file, relative to O(app_path) or absolute.
    type: str
    default: alembic.ini
  python:
    description:
      - The application's Python, a path or a command with arguments, for example C(/srv/app/.venv/bin/python)
        or C(poetry run python). It must be able to import alembic and the application.
      - Defaults to the Python that runs this module (C(ansible_python_interpreter)).
    type: str
  alembic_command:
    description:
      - Run the downgrade or upgrade itself with this command instead of alembic's Python API, for example
        C(poetry run alembic). Reading, checks and check mode still use O(python).
    type: str
  database_url:
    description:
      - The SQLAlchemy URL of the database, given to the application in the environment variable
        O(database_url_env) (and as C(sqlalchemy.url)). Omit it when the application's environment already
        has it.
      - Never returned; it is masked in any alembic output that comes back.
    type: str
  database_url_env:
    description: The environment variable the application's C(env.py) reads the database URL from.
    type: str
    default: DATABASE_URL
  environment:
    description: More environment variables for the application (its settings), values are not logged.
    type: dict
    default: {}
  action:
    description:
      - V(info) reports and changes nothing.
      - V(downgrade) moves the database down to O(target).
      - V(upgrade) moves it up to O(target) (to roll forward after a fix).
    type: str
    choices: [info, downgrade, upgrade]
    default: info
  target:
    description:
      - The revision to reach. A revision id (or a unique prefix of at least 4 characters), V(base), V(head),
        or V(-N) for N steps below the head.
      - Required for O(action=downgrade); O(action=upgrade) defaults to V(head).
    type: str
  backup_path:
    description:
      - Take a C(pg_dump --format=custom) of the database to this file before a downgrade. Its directory must
        exist. The dump is written beside it first and moved into place when complete.
    type: path
  pg_dump:
    description: The C(pg_dump) binary for O(backup_path).
    type: path
    default: pg_dump
  timeout:
    description: Seconds each alembic run (and the dump) may take before the task fails.
    type: int
    default: 600
notes:
  - Supports check mode (returns the SQL in RV(sql)) and diff mode (the revision before and after).
  - A downgrade may lose data (the runbook warns about it); O(backup_path) keeps a copy first.
  - Follows a single line of history; databases at several heads or merge revisions on the path are refused.
seealso:
  - module: sre.rollback.postgres_flexible_restore
requirements:
  - alembic and the application, importable by O(python)
"""

EXAMPLES = r"""
- name: Where is the database (alembic current, heads and history)
  sre.rollback.alembic_migration:
    app_path: /srv/fundrbolt-api
    python: /srv/fundrbolt-api/.venv/bin/python
    database_url: "{{ fundrbolt_database_url }}"
  register: migrations

- name: Show the SQL of going back one migration (changes nothing)
  sre.rollback.alembic_migration:
    app_path: /srv/fundrbolt-api
    python: poetry run python
    database_url: "{{ fundrbolt_database_url }}"
    action: downgrade
    target: "-1"
  check_mode: true
  register: planned

- name: Downgrade one revision below head, with a dump first
  sre.rollback.alembic_migration:
    app_path: /srv/fundrbolt-api
    python: poetry run python
    database_url: "{{ fundrbolt_database_url }}"
    action: downgrade
    target: "-1"
    backup_path: "/var/backups/fundrbolt-before-downgrade-{{ ansible_date_time.iso8601_basic_short }}.dump"

- name: Or downgrade to a named revision
  sre.rollback.alembic_migration:
    app_path: /srv/fundrbolt-api
    python: poetry run python
    database_url: "{{ fundrbolt_database_url }}"
    action: downgrade
    target: abc123def456

- name: Roll forward again after the fix
  sre.rollback.alembic_migration:
    app_path: /srv/fundrbolt-api
    python: poetry run python
    database_url: "{{ fundrbolt_database_url }}"
    action: upgrade
    target: head
"""

RETURN = r"""
current_before:
  description: The database's revision before the task (null = base, several heads joined with a comma).
  returned: always
  type: str
current:
  description: The database's revision after the task (in check mode the same as RV(current_before)).
  returned: always
  type: str
heads:
  description: The head revisions of the migration scripts.
  returned: always
  type: list
  elements: str
history:
  description: Every revision of the scripts, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    revision:
      description: The revision id.
      type: str
    down_revision:
      description: The revision below it (null for the first).
      type: str
    doc:
      description: The first line of its docstring.
      type: str
    is_head:
      description: Whether it is a head.
      type: bool
    has_downgrade:
      description: Whether its C(downgrade()) does something (not missing, only C(pass), or C(NotImplementedError)).
      type: bool
target:
  description: The revision O(target) resolved to (null = base, or for O(action=info)).
  returned: always
  type: str
steps:
  description: The revisions downgraded or upgraded, in the order alembic ran them (would run, in check mode).
  returned: always
  type: list
  elements: str
sql:
  description: In check mode, the SQL alembic's offline mode produces for the steps; otherwise null.
  returned: always
  type: str
backup:
  description: The path of the C(pg_dump) taken before the downgrade, or null.
  returned: always
  type: str
before:
  description: The revision before, as C({revision}).
  returned: always
  type: dict
after:
  description: The revision after, as C({revision}).
  returned: always
  type: dict
duration_s:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible_collections.sre.rollback.plugins.module_utils.alembic_migration import AlembicApp, migrate
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackModule


def main():
    module = RollbackModule(
        argument_spec=dict(
            app_path=dict(type="path", required=True),
            config=dict(type="str", default="alembic.ini"),
            python=dict(type="str"),
            alembic_command=dict(type="str"),
            database_url=dict(type="str", no_log=True),
            database_url_env=dict(type="str", default="DATABASE_URL"),
            environment=dict(type="dict", default={}, no_log=True),
            action=dict(type="str", choices=["info", "downgrade", "upgrade"], default="info"),
            target=dict(type="str"),
            backup_path=dict(type="path"),
            pg_dump=dict(type="path", default="pg_dump"),
            timeout=dict(type="int", default=600),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def work():
        app = AlembicApp.from_params(params)
        return migrate(app, params["action"], params["target"], module.check_mode, params["backup_path"],
                       params["pg_dump"])

    module.run(work)


if __name__ == "__main__":
    main()
