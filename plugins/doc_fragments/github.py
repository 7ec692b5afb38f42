# -*- coding: utf-8 -*-
# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The GitHub connection options every GitHub module of sre.rollback takes."""

    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - The GitHub REST API endpoint. For GitHub Enterprise Server this is C(https://HOST/api/v3).
      - Falls back to E(GITHUB_API_URL) (set in every GitHub Actions job), then C(https://api.github.com).
    type: str
  token:
    description:
      - A GitHub token (fine-grained or classic personal access token, or a GitHub App installation token)
        allowed to use the repository's Actions and Issues. Never logged or returned.
      - Falls back to E(GITHUB_TOKEN), then E(GH_TOKEN).
    type: str
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate. Leave on outside a lab.
    type: bool
    default: true
  ca_path:
    description:
      - A CA bundle file (or directory) to trust for O(api_url), for a GitHub Enterprise Server with a private CA.
      - Without it the system trust store is used, which honours E(SSL_CERT_FILE).
    type: path
  api_timeout:
    description:
      - Seconds to wait for one API response.
    type: float
    default: 30
  api_retries:
    description:
      - How many times a call is retried after a server error (5xx), a connection failure or a rate-limit answer,
        with exponential backoff.
      - A POST (re-run, dispatch, new issue) whose answer was lost is never re-sent, so nothing is started twice.
    type: int
    default: 3
  rate_limit_wait:
    description:
      - The longest wait, in seconds, for a rate limit to pass. A secondary limit (429 or 403 with C(Retry-After))
        or an exhausted primary limit (C(x-ratelimit-remaining) 0, until C(x-ratelimit-reset)) within this bound is
        waited out; a longer one fails the task and says when the limit resets.
    type: int
    default: 60
requirements:
  - httpx >= 0.25
"""
