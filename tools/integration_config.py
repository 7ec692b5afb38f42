# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print tests/integration/integration_config.yml for the running sandbox.

ansible-test integration passes this file to every target as extra vars;
the targets read their endpoints and credentials from the `sandbox` dict.
"""

import json
import os
import sys


def main():
    state_dir = os.environ.get("SRE_SANDBOX_DIR") or os.path.join(os.path.dirname(os.path.dirname(__file__)), ".sandbox")
    with open(os.path.join(state_dir, "env.json")) as handle:
        env = json.load(handle)
    config = {
        "sandbox": {
            "subscription_id": env["AZURE_SUBSCRIPTION_ID"],
            "tenant_id": env["AZURE_TENANT_ID"],
            "client_id": env["AZURE_CLIENT_ID"],
            "secret": env["AZURE_CLIENT_SECRET"],
            "arm_endpoint": env["AZURE_ARM_ENDPOINT"],
            "authority_host": env["AZURE_AUTHORITY_HOST"],
            "ca_bundle": env["REQUESTS_CA_BUNDLE"],
            "admin_url": env["SRE_SANDBOX_URL"],
            # Every variable the sandbox exports (each provider adds its own endpoints).
            "env": env,
        }
    }
    json.dump(config, sys.stdout, indent=2)  # JSON is YAML
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
