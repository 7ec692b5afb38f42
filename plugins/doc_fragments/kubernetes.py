# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The Kubernetes connection options every Kubernetes module of sre.rollback takes.

    Same names and environment variables as kubernetes.core, so a kubeconfig,
    an AWX Kubernetes credential or a CI job's variables work unchanged.
    """

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file to use.
      - Falls back to E(K8S_AUTH_KUBECONFIG), then to E(KUBECONFIG) (several files separated by C(:) are merged, by the
        C(kubernetes) Python client's rules, which take C(current-context) from the last file that sets one where
        C(kubectl) takes the first; so name O(context) when you merge files), then to C(~/.kube/config).
      - In a pod with none of these, the pod's service account is used.
      - Not read when O(host) is set.
    type: path
  context:
    description:
      - The kubeconfig context to use. Defaults to the kubeconfig's current context.
      - Falls back to E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example C(https://aks-prod-1a2b3c.hcp.westeurope.azmk8s.io:443).
      - When set, no kubeconfig is read; authenticate with O(api_key) and trust the server with O(ca_cert).
      - Falls back to E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - A bearer token (for example a service account token) to authenticate with. Never logged or returned.
      - With a kubeconfig, replaces the token of its user.
      - Falls back to E(K8S_AUTH_API_KEY).
    type: str
  ca_cert:
    description:
      - Path of the CA bundle that signed the API server's certificate.
      - With a kubeconfig, replaces its C(certificate-authority).
      - Falls back to E(K8S_AUTH_SSL_CA_CERT).
    type: path
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Only switch it off against a test cluster.
      - Falls back to E(K8S_AUTH_VERIFY_SSL).
    type: bool
    default: true
  request_timeout:
    description:
      - Seconds to wait for the answer to one API request.
      - A request that fails on throttling (429, after its C(Retry-After)), a server error (5xx) or a connection
        error is sent again a few times with backoff; other errors (404, 409, 422, 401, 403) are not.
    type: float
    default: 30.0
requirements:
  - kubernetes >= 24.2 (the Kubernetes Python client)
"""
