# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which certificate authorities an HTTPS client of the collection trusts.

One rule for every httpx-based client (health probes, GitHub, the blue/green
controller, Static Web App probes): ``ca_path`` when given, else the bundle
named by ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_DIR`` (what
httpx, requests and the Azure SDKs users read), else the default store.
"""

from __future__ import annotations

import os
import ssl

from ansible_collections.sre.rollback.plugins.module_utils.common import RollbackError

CA_ENVIRONMENT = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "SSL_CERT_DIR")


def ca_bundle(validate_certs=True, ca_path=None, environ=None):
    """False (no verification), True (the default store) or the CA file or directory to trust."""
    if not validate_certs:
        return False
    if ca_path:
        return ca_path
    env = os.environ if environ is None else environ
    return next((env[name] for name in CA_ENVIRONMENT if env.get(name)), True)


def ssl_verify(bundle):
    """What httpx's ``verify=`` takes for a ca_bundle() answer: a bool or an SSL context."""
    if not isinstance(bundle, str):
        return bundle
    if not os.path.exists(bundle):
        raise RollbackError("CA bundle %s does not exist: check ca_path (or SSL_CERT_FILE / REQUESTS_CA_BUNDLE)." % bundle)
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    return ssl.create_default_context(cafile=bundle)


def tls_verify(validate_certs=True, ca_path=None, environ=None):
    """ca_bundle() ready for httpx."""
    return ssl_verify(ca_bundle(validate_certs, ca_path, environ))
