# -*- coding: utf-8 -*-
# Copyright: (c) 2025, sre.rollback maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The options every Helm module of sre.rollback takes: the release, and how Helm is run."""

    DOCUMENTATION = r"""
options:
  release_name:
    description:
      - The Helm release.
    type: str
    required: true
    aliases: [name]
  release_namespace:
    description:
      - The namespace the release lives in (C(helm --namespace)).
    type: str
    default: default
    aliases: [namespace]
  backend:
    description:
      - How Helm is run.
      - V(cli) runs the C(helm) binary (Helm 3 or 4) found on E(PATH) or given by O(binary_path); the
        bearer token and the SQL connection string reach it through its environment (E(HELM_KUBETOKEN),
        E(HELM_DRIVER_SQL_CONNECTION_STRING)), never its command line.
      - V(library) runs Helm 4's own code through the Python package C(helm-python-sdk)
        (C(import helm_python)) in a child process of the module (Helm's Go code reads the SQL connection
        string from the environment it starts with); no binary needed.
      - V(auto) takes the binary when there is one, else the library.
    type: str
    default: auto
    choices: [auto, cli, library]
  binary_path:
    description:
      - The C(helm) binary to run, when it is not the one on E(PATH). Implies a binary is there for V(auto).
    type: path
  storage_driver:
    description:
      - Where Helm keeps release records, as Helm's E(HELM_DRIVER). Defaults to E(HELM_DRIVER), else Helm's
        default V(secret) (one Secret per revision in the release namespace).
      - V(configmap) keeps them in ConfigMaps, V(sql) in a PostgreSQL database (O(sql_connection_string)).
      - The collection's own tests use V(sql) with a real PostgreSQL, because Helm's V(secret) and
        V(configmap) drivers talk protobuf to the API server, which the test sandbox's Kubernetes stand-in
        does not serve; against a real cluster every driver works.
    type: str
    choices: [secret, configmap, sql]
  sql_connection_string:
    description:
      - The PostgreSQL connection string of the V(sql) storage driver, as Helm's
        E(HELM_DRIVER_SQL_CONNECTION_STRING) (which is also the default), for example
        C(host=db.example.com port=5432 user=helm password=... dbname=helm sslmode=require).
      - Never shown in output or messages.
    type: str
"""
