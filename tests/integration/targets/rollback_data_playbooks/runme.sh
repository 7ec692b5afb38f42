#!/usr/bin/env bash
# root, log, rollback_locks and the helpers are set by the sourced playbook_runner.sh,
# which shellcheck does not follow without -x.
# shellcheck disable=SC2154
# The data, configuration, cache and infrastructure rollback playbooks end to
# end against the sandbox, run as a person runs them (-e env=sandbox, the
# repository's inventory and ansible.cfg).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../setup_playbook_runner/playbook_runner.sh
source "$here/../setup_playbook_runner/playbook_runner.sh"

admin POST reset >/dev/null
admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 0}' >/dev/null

redis_count() {  # redis_count <pattern>: keys matching it in db 0 of the sandbox's Redis
  python - "$1" <<'PY'
import os, sys
import redis
client = redis.Redis(host=os.environ["SRE_SANDBOX_REDIS_HOST"], port=int(os.environ["SRE_SANDBOX_REDIS_PORT"]),
                     password=os.environ["SRE_SANDBOX_REDIS_PASSWORD"])
print(sum(1 for _key in client.scan_iter(match=sys.argv[1], count=1000)))
PY
}
expect_count() {  # expect_count <pattern> <n>
  local got
  got=$(redis_count "$1")
  [ "$got" = "$2" ] || { echo "FAIL: $got keys match $1, expected $2"; exit 1; }
}
current_secret() {  # current_secret <vault url> <name>: the current value, for the test's eyes only
  python - "$1" "$2" <<'PY'
import os, sys
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
credential = ClientSecretCredential(os.environ["AZURE_TENANT_ID"], os.environ["AZURE_CLIENT_ID"],
                                    os.environ["AZURE_CLIENT_SECRET"], authority=os.environ["AZURE_AUTHORITY_HOST"],
                                    disable_instance_discovery=True)
print(SecretClient(sys.argv[1], credential).get_secret(sys.argv[2]).value)
PY
}

echo "== cache: a missing environment fails before anything runs"
play 2 playbooks/rollback-cache.yml -e env=nowhere
says "Name the environment"

echo "== cache: check mode counts the session and JWT keys and deletes nothing"
sessions=$(redis_count 'session:*')
play 0 playbooks/rollback-cache.yml -e env=sandbox --check
says "would delete 340 keys"
expect_count 'session:*' "$sessions"

echo "== cache: without confirmation nothing is deleted, and the user-facing effect is named"
play 2 playbooks/rollback-cache.yml -e env=sandbox
says "Every user is logged"
says "needs confirmation"
expect_count 'session:*' "$sessions"

echo "== cache: confirmed, sessions and the JWT blacklist go, the rest stays, the app restarts healthy"
others=$(redis_count 'cache:*')
play 0 playbooks/rollback-cache.yml -e env=sandbox -e confirm=true
recap fundrbolt-cache-sandbox 2 0
says "deleted 340 keys"
says "app restarted, healthy"
expect_count 'session:*' 0
expect_count 'jwt_blacklist:*' 0
expect_count 'cache:*' "$others"

echo "== cache: again, nothing left to delete, no restart"
play 0 playbooks/rollback-cache.yml -e env=sandbox -e confirm=true
recap fundrbolt-cache-sandbox 0 0

echo "== config: check mode changes no secret"
vault=$SRE_SANDBOX_KEYVAULT_KV_FUNDRBOLT_SANDBOX_URL
bad=$(current_secret "$vault" database-url)
play 0 playbooks/rollback-config.yml -e env=sandbox --check --diff
[ "$(current_secret "$vault" database-url)" = "$bad" ] || { echo "FAIL: check mode changed the secret"; exit 1; }
if grep -q -- "$bad" "$log"; then echo "FAIL: the secret value is in the output"; exit 1; fi

echo "== config: the database URL goes back to its previous value, the app restarts healthy"
play 0 playbooks/rollback-config.yml -e env=sandbox --limit fundrbolt-api-sandbox
recap fundrbolt-api-sandbox 2 0
says "database-url restored to"
good=$(current_secret "$vault" database-url)
case $good in *sandbox-pw-v3@*) ;; *) echo "FAIL: database-url is not the previous value"; exit 1 ;; esac
if grep -q -- "$good" "$log"; then echo "FAIL: the secret value is in the output"; exit 1; fi

echo "== config: again, already at that value, no restart"
play 0 playbooks/rollback-config.yml -e env=sandbox --limit fundrbolt-api-sandbox
recap fundrbolt-api-sandbox 0 0
[ "$(current_secret "$vault" database-url)" = "$good" ] || { echo "FAIL: a re-run changed the secret"; exit 1; }

deployments() {  # deployments: how many deployments the sandbox's rg-fundrbolt-sandbox has in its history
  admin GET deployments | python -c 'import json, sys; print(len(json.load(sys.stdin)["scopes"]["rg-fundrbolt-sandbox"]["deployments"]))'
}
vm_runs() {  # vm_runs: what the sandbox VM's OS disk holds
  admin GET compute | python -c 'import json, sys
print([v for v in json.load(sys.stdin)["virtual_machines"] if v["name"] == "vm-fusionnet-sandbox-01"][0]["running_content"])'
}
admin PUT deployments/settings '{"duration_s": 0.5}' >/dev/null
admin PUT compute/settings '{"deallocate_s": 0.3, "start_s": 0.3, "vm_update_s": 0.3, "disk_create_s": 0.3}' >/dev/null

echo "== infrastructure: without confirmation the what-if is shown and nothing is deployed"
count=$(deployments)
play 0 playbooks/rollback-infrastructure.yml -e env=sandbox --limit fundrbolt-infra-sandbox -e bad_deployment=infra-2026-11-23
says "would create"
says "previewed only"
[ "$(deployments)" = "$count" ] || { echo "FAIL: a deployment was made without confirmation"; exit 1; }

echo "== infrastructure: confirmed, the last good deployment before the bad one is redeployed"
play 0 playbooks/rollback-infrastructure.yml -e env=sandbox --limit fundrbolt-infra-sandbox -e bad_deployment=infra-2026-11-23 -e confirm=true
says "infra-2026-11-22 redeployed as"
[ "$(deployments)" = "$((count + 1))" ] || { echo "FAIL: expected one new deployment"; exit 1; }

echo "== infrastructure: again, what-if finds nothing to change"
play 0 playbooks/rollback-infrastructure.yml -e env=sandbox --limit fundrbolt-infra-sandbox -e bad_deployment=infra-2026-11-23 -e confirm=true
says "already in place"
[ "$(deployments)" = "$((count + 1))" ] || { echo "FAIL: a re-run deployed again"; exit 1; }

echo "== VM: without a snapshot or a time nothing is restored"
play 2 playbooks/rollback-infrastructure.yml -e env=sandbox --limit fusionnet-vm-sandbox -e confirm=true
says "Name the snapshot to restore"

echo "== VM: the plan is shown, nothing restored without confirmation"
before_content=$(vm_runs)
play 0 playbooks/rollback-infrastructure.yml -e env=sandbox --limit fusionnet-vm-sandbox -e before=2025-03-02T00:00:00Z
says "would be restored from snap-fusionnet-01-os-20250301-good"
[ "$(vm_runs)" = "$before_content" ] || { echo "FAIL: the VM changed without confirmation"; exit 1; }

echo "== VM: confirmed, the OS disk is restored from the last snapshot before the bad deploy"
play 0 playbooks/rollback-infrastructure.yml -e env=sandbox --limit fusionnet-vm-sandbox -e before=2025-03-02T00:00:00Z -e confirm=true
says "restored from snap-fusionnet-01-os-20250301-good"
case $(vm_runs) in *"2.6.3"*) ;; *) echo "FAIL: the VM runs $(vm_runs)"; exit 1 ;; esac

echo "== VM: again, nothing to do"
play 0 playbooks/rollback-infrastructure.yml -e env=sandbox --limit fusionnet-vm-sandbox -e before=2025-03-02T00:00:00Z -e confirm=true
recap fusionnet-vm-sandbox 0 0
says "already runs snap-fusionnet-01-os-20250301-good"

staging_image() {  # staging_image: the image the mystira sandbox app's staging slot runs
  admin GET state | python -c 'import json, sys
print([s for s in json.load(sys.stdin)["sites"] if s["name"] == "mystira-sandbox-app"][0]["slots"]["staging"]["build"]["image"])'
}
echo "== container image: a good then a bad deploy, then the backend playbook rolls the image back"
play 0 "$here/deploy_image.yml" -e tag=1.3.0
play 0 "$here/deploy_image.yml" -e tag=1.4.0
case $(staging_image) in *:1.4.0) ;; *) echo "FAIL: staging runs $(staging_image)"; exit 1 ;; esac
play 0 playbooks/rollback-backend.yml -e env=sandbox --limit mystira-api-sandbox
recap mystira-api-sandbox 1 0
says "image set"
case $(staging_image) in *:1.3.0) ;; *) echo "FAIL: staging runs $(staging_image) after the rollback"; exit 1 ;; esac

echo "== container image: again, already on the earlier image"
play 0 playbooks/rollback-backend.yml -e env=sandbox --limit mystira-api-sandbox
recap mystira-api-sandbox 0 0

echo "== container image: a tag the registry lacks is refused, nothing changes"
play 2 playbooks/rollback-backend.yml -e env=sandbox --limit mystira-api-sandbox -e rollback_to_build=9.9.9
says "9.9.9"
case $(staging_image) in *:1.3.0) ;; *) echo "FAIL: staging runs $(staging_image) after a refused rollback"; exit 1 ;; esac

app_dir="$root/tests/sandbox/apps/fundrbolt_api"
alembic_at() {  # alembic_at: the sample app database's revision
  (cd "$app_dir" && DATABASE_URL=$SRE_SANDBOX_PG_URL python -m alembic -c alembic.ini current 2>/dev/null | awk '{print $1}')
}
expect_revision() {
  local got
  got=$(alembic_at)
  [ "$got" = "$1" ] || { echo "FAIL: the database is at '$got', expected '$1'"; exit 1; }
}
(cd "$app_dir" && DATABASE_URL=$SRE_SANDBOX_PG_URL python -m alembic -c alembic.ini upgrade head >/dev/null 2>&1)
expect_revision 3c4d5e6f7081

echo "== database: no strategy and no expected head fails before anything runs"
play 2 playbooks/rollback-database.yml -e env=sandbox
says "Nothing was changed"

echo "== database: check mode plans the downgrade and changes nothing"
play 0 playbooks/rollback-database.yml -e env=sandbox -e strategy=migration_downgrade --check
says "would downgrade 3c4d5e6f7081"
expect_revision 3c4d5e6f7081

echo "== database: a --limit that leaves the database out cannot skip the schema gate"
play 2 playbooks/rollback-backend.yml -e env=sandbox --limit fundrbolt-api-sandbox \
  -e rollback_to_build=1.4.1 -e expected_schema_head=1a2b3c4d5e6f
says "add them to --limit"

echo "== database: the old app expects 1a2b3c4d5e6f, so the backend rollback is refused first"
play 2 playbooks/rollback-backend.yml -e env=sandbox --limit 'fundrbolt-api-sandbox,fundrbolt-db-sandbox' \
  -e rollback_to_build=1.4.1 -e expected_schema_head=1a2b3c4d5e6f
says "Roll the database back first"
expect_revision 3c4d5e6f7081

echo "== database: the gate decides a downgrade to the expected head, with a pg_dump first"
backups=$(mktemp -d)
play 0 playbooks/rollback-database.yml -e env=sandbox -e expected_head=1a2b3c4d5e6f -e database_rollback_backup_dir="$backups"
says "3c4d5e6f7081 -> 1a2b3c4d5e6f"
says "backup $backups/fundrbolt-db-sandbox-3c4d5e6f7081-"
expect_revision 1a2b3c4d5e6f
ls "$backups"/fundrbolt-db-sandbox-3c4d5e6f7081-*.dump >/dev/null || { echo "FAIL: no pg_dump was taken"; exit 1; }
rm -rf "$backups"

echo "== database: again, the database is where the old app expects it"
play 0 playbooks/rollback-database.yml -e env=sandbox -e expected_head=1a2b3c4d5e6f
recap fundrbolt-db-sandbox 0 0
says "the revision the app"
(cd "$app_dir" && DATABASE_URL=$SRE_SANDBOX_PG_URL python -m alembic -c alembic.ini upgrade head >/dev/null 2>&1)

echo "== database: a point-in-time restore needs a time"
play 2 playbooks/rollback-database.yml -e env=sandbox -e strategy=point_in_time_restore
says "needs the time to restore to"

echo "== database: restore to a new server, cut over through Key Vault, restart the app"
sleep 2
restore_time=$(date -u -d '-1 second' +%Y-%m-%dT%H:%M:%SZ)
play 0 playbooks/rollback-database.yml -e env=sandbox -e strategy=point_in_time_restore -e restore_time="$restore_time"
says "the app now uses it, healthy"
says "is untouched"
case $(current_secret "$vault" database-url) in *fundrbolt-sandbox-db-restored-*) ;; *) echo "FAIL: Key Vault does not point at the restored server"; exit 1 ;; esac

echo "== database: again, the restored server is there and the app already uses it"
play 0 playbooks/rollback-database.yml -e env=sandbox -e strategy=point_in_time_restore -e restore_time="$restore_time"
recap fundrbolt-db-sandbox 0 0

echo "== all data playbook scenarios passed"
