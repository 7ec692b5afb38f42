# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for module_utils/alembic_migration.py: the app-side planning functions (the very
code the application's interpreter runs), secret masking, input checks, and the whole script run
against the sample application on a SQLite file (PostgreSQL runs in the integration target)."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from ansible_collections.sre.rollback.plugins.module_utils.alembic_migration import (
    MASK,
    AlembicApp,
    AppSideFailure,
    has_real_downgrade,
    mask,
    migrate,
    migration_path,
    resolve_target,
    url_secrets,
)
from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

SAMPLE_APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "sandbox", "apps",
                          "fundrbolt_api")

# c -> b -> a -> base
LINE = {"c": ("b",), "b": ("a",), "a": ()}


def _module(downgrade_body):
    return "revision = 'x'\n\ndef upgrade():\n    pass\n\n" + textwrap.dedent(downgrade_body)


@pytest.mark.parametrize("source, expected", [
    (_module("def downgrade():\n    op.drop_table('t')\n"), True),
    (_module("def downgrade():\n    '''Drop it.'''\n    op.drop_table('t')\n"), True),
    (_module("def downgrade():\n    pass\n"), False),
    (_module("def downgrade():\n    '''Nothing to undo.'''\n    pass\n"), False),
    (_module("def downgrade():\n    ...\n"), False),
    (_module("def downgrade():\n    raise NotImplementedError\n"), False),
    (_module("def downgrade():\n    raise NotImplementedError('irreversible')\n"), False),
    (_module("def downgrade():\n    if True:\n        raise NotImplementedError\n    op.drop_table('t')\n"), True),
    (_module("def downgrade():\n    raise RuntimeError('on purpose')\n"), True),
    ("revision = 'x'\n\ndef upgrade():\n    pass\n", False),
])
def test_has_real_downgrade(source, expected):
    assert has_real_downgrade(source) is expected


@pytest.mark.parametrize("spec, expected", [
    ("head", "c"), ("heads", "c"), ("-1", "b"), ("-2", "a"), ("-3", None), ("base", None), ("b", "b"),
])
def test_resolve_target_counts_from_the_head(spec, expected):
    assert resolve_target(spec, ["c"], LINE) == expected


def test_resolve_target_accepts_a_unique_prefix():
    revisions = {"3c4d5e6f7081": ("2b3c4d5e6f70",), "2b3c4d5e6f70": ()}
    assert resolve_target("3c4d", ["3c4d5e6f7081"], revisions) == "3c4d5e6f7081"


@pytest.mark.parametrize("spec, heads, message", [
    ("-4", ["c"], "goes below base"),
    ("nope", ["c"], "not in the migration scripts"),
    ("head", ["c", "d"], "2 heads"),
    ("-1", [], "0 heads"),
])
def test_resolve_target_refuses(spec, heads, message):
    with pytest.raises(AppSideFailure, match=message):
        resolve_target(spec, heads, dict(LINE, d=("a",)) if "d" in heads else LINE)


def test_resolve_target_refuses_an_ambiguous_prefix():
    with pytest.raises(AppSideFailure, match="ambiguous"):
        resolve_target("abcd", ["abcd1"], {"abcd1": ("abcd2",), "abcd2": ()})


def test_migration_path():
    assert migration_path("c", "a", LINE) == ["c", "b"]
    assert migration_path("c", None, LINE) == ["c", "b", "a"]
    assert migration_path("c", "c", LINE) == []
    assert migration_path("a", "c", LINE) is None  # c is not below a
    with pytest.raises(AppSideFailure, match="not in the migration scripts"):
        migration_path("zz", "a", LINE)
    with pytest.raises(AppSideFailure, match="merge"):
        migration_path("m", "a", dict(LINE, m=("b", "c")))


def test_url_secrets_and_mask():
    url = "postgresql+psycopg://app:p%40ss%2Fw0rd@db.example.org:5432/fundrbolt"
    secrets = url_secrets(url)
    assert url in secrets and "p@ss/w0rd" in secrets and "p%40ss%2Fw0rd" in secrets
    text = "could not connect with %s (password p@ss/w0rd)" % url
    masked = mask({"msg": text, "list": [text], "n": 3}, secrets)
    assert "p@ss" not in str(masked) and "w0rd" not in str(masked)
    assert masked["msg"].count(MASK) == 2 and masked["n"] == 3
    assert url_secrets(None) == []


def test_inputs_are_checked_before_running_anything(tmp_path):
    app = AlembicApp(str(tmp_path), python="/nonexistent/python")
    with pytest.raises(RollbackError, match="needs a target"):
        migrate(app, "downgrade", None)
    with pytest.raises(RollbackError, match="alembic configuration .* does not exist"):
        migrate(app, "info")
    (tmp_path / "alembic.ini").write_text("[alembic]\n")
    with pytest.raises(RollbackError, match="backup_path"):
        migrate(app, "downgrade", "-1", backup_path=str(tmp_path / "missing" / "x.dump"))
    with pytest.raises(RollbackError, match="Python /nonexistent/python was not found"):
        migrate(app, "info")


@pytest.fixture
def sqlite_app(tmp_path):
    pytest.importorskip("alembic")
    url = "sqlite:///%s" % (tmp_path / "fundrbolt.db")
    return AlembicApp(SAMPLE_APP, python=sys.executable, database_url=url, timeout=120)


def test_script_reads_history_and_plans_on_a_real_alembic(sqlite_app):
    changed, result = migrate(sqlite_app, "info")
    assert changed is False
    assert result["current"] is None
    assert [h["revision"] for h in result["history"]] == ["3c4d5e6f7081", "2b3c4d5e6f70", "1a2b3c4d5e6f"]
    assert all(h["has_downgrade"] for h in result["history"])

    # Check mode of an upgrade from base: the offline SQL, nothing applied.
    changed, result = migrate(sqlite_app, "upgrade", "2b3c", check_mode=True)
    assert changed is True
    assert result["steps"] == ["1a2b3c4d5e6f", "2b3c4d5e6f70"]
    assert "CREATE TABLE donations" in result["sql"]
    assert migrate(sqlite_app, "info")[1]["current"] is None

    # The first two migrations run on SQLite; then downgrade by steps from the head.
    changed, result = migrate(sqlite_app, "upgrade", "2b3c4d5e6f70")
    assert changed and result["current"] == "2b3c4d5e6f70"
    changed, result = migrate(sqlite_app, "downgrade", "-2")
    assert changed and result["current"] == "1a2b3c4d5e6f" and result["steps"] == ["2b3c4d5e6f70"]
    assert migrate(sqlite_app, "downgrade", "-2")[0] is False

    with pytest.raises(RollbackError, match="not below the current revision") as error:
        migrate(sqlite_app, "downgrade", "head")
    assert error.value.details["current"] == "1a2b3c4d5e6f"


def test_script_refuses_a_step_without_downgrade(tmp_path):
    pytest.importorskip("alembic")
    variant = AlembicApp(os.path.join(SAMPLE_APP, "variants", "no_downgrade"), python=sys.executable,
                         database_url="sqlite:///%s" % (tmp_path / "v.db"))
    changed, result = migrate(variant, "info")
    flags = {h["revision"]: h["has_downgrade"] for h in result["history"]}
    assert flags == {"5e6f708192a3": False, "4d5e6f708192": False, "3c4d5e6f7081": True,
                     "2b3c4d5e6f70": True, "1a2b3c4d5e6f": True}


def test_database_errors_are_clear_and_masked(tmp_path):
    pytest.importorskip("alembic")
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://app:s3cret-pw@127.0.0.1:1/fundrbolt"
    app = AlembicApp(SAMPLE_APP, python=sys.executable, database_url=url, timeout=120)
    with pytest.raises(RollbackError, match="cannot reach the database") as error:
        migrate(app, "downgrade", "-1")
    assert "s3cret-pw" not in str(error.value.message) + str(error.value.details)


def test_alembic_command_runs_the_migration_through_the_cli(tmp_path):
    pytest.importorskip("alembic")
    cli = os.path.join(os.path.dirname(sys.executable), "alembic")
    if not os.path.exists(cli):
        pytest.skip("no alembic console script beside this Python")
    app = AlembicApp(SAMPLE_APP, python=sys.executable, alembic_command=cli,
                     database_url="sqlite:///%s" % (tmp_path / "cli.db"), timeout=120)
    changed, result = migrate(app, "upgrade", "1a2b3c4d5e6f")
    assert changed and result["current"] == "1a2b3c4d5e6f" and result["steps"] == ["1a2b3c4d5e6f"]
    changed, result = migrate(app, "downgrade", "base")
    assert changed and result["current"] is None
    assert migrate(app, "downgrade", "base")[0] is False
