#!/usr/bin/env bash
# root, log, rollback_locks and the helpers are set by the sourced playbook_runner.sh,
# which shellcheck does not follow without -x.
# shellcheck disable=SC2154
# Automatic rollback end to end by the metrics sources (issue 7): playbooks/auto-rollback.yml with
# trigger_source=azure_monitor and =prometheus against the sandbox's fundrbolt API, under steady
# traffic that the app's data plane reports to the Azure Monitor stand-in and that the real
# Prometheus scrapes. A healthy deploy is watched and left alone; a deploy that starts failing is
# caught by the error rate (Azure Monitor), a slow one by the response time (Prometheus), and each
# is swapped back to the build it replaced.
# shellcheck source=../setup_playbook_runner/playbook_runner.sh
source "$(dirname "$0")/../setup_playbook_runner/playbook_runner.sh"

SRE_ROLLBACK_STATE_DIR=$(mktemp -d)
export SRE_ROLLBACK_STATE_DIR
traffic_pid=""
stop_traffic() { if [ -n "$traffic_pid" ]; then kill "$traffic_pid" 2>/dev/null || true; wait "$traffic_pid" 2>/dev/null || true; fi; traffic_pid=""; }
trap 'stop_traffic; admin POST reset >/dev/null || true; rm -rf "$log" "$SRE_ROLLBACK_STATE_DIR"' EXIT

# Users: a request to production every 0.15 s (one at a time, so a slow build also slows the rate),
# for as long as the target runs. Metrics sources only know the traffic an app really served.
start_traffic() {
  python - "$1" <<'PY' &
import os, sys, time
import httpx
with httpx.Client(verify=os.environ["REQUESTS_CA_BUNDLE"], timeout=10) as client:
    while True:
        try:
            client.get(sys.argv[1])
        except httpx.HTTPError:
            pass
        time.sleep(0.15)
PY
  traffic_pid=$!
}
fresh_sandbox() {
  admin POST reset >/dev/null
  admin PUT settings '{"swap_duration_s": 0.3, "lro_retry_after_s": 1}' >/dev/null
}

new=registry.sandbox.local/fundrbolt-api:1.5.0
# Windows of seconds instead of minutes (Azure Monitor still judges whole one-minute grains), and a
# response-time threshold at the sandbox's scale: its builds answer in milliseconds.
policy='{"rollback_trigger_policy": {"error_rate": {"window_s": 3}, "response_time": {"window_s": 3, "threshold": 500},
         "cpu": {"window_s": 3}, "memory": {"window_s": 3}}}'
watch() {  # watch <source> <seconds> [args...]: auto-rollback.yml for the fundrbolt API, evaluating every second
  local source=$1 seconds=$2; shift 2
  echo "   [${SECONDS}s] auto-rollback.yml, trigger_source=$source, watch=$seconds"
  play 0 playbooks/auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox \
    -e trigger_source="$source" -e watch="$seconds" -e interval=1 -e "$policy" "$@"
}

fresh_sandbox
start_traffic "$(prod_url)/health"

echo "== a healthy deploy: 1.5.0 through the staging slot, then watched by each source and left alone"
echo "   [${SECONDS}s] deploy $new"
play 0 playbooks/deploy-with-auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox -e image="$new"
serves "$(prod_url)/health" 1.5.0
watch prometheus 4
recap fundrbolt-api-sandbox 0 0
says "no trigger fired in"
says "verdict healthy"
watch azure_monitor 2
recap fundrbolt-api-sandbox 0 0
says "no trigger fired in"
says "verdict healthy"
serves "$(prod_url)/health" 1.5.0

echo "== Azure Monitor: 1.5.0 starts failing under traffic; the error rate fires and 1.4.2 is swapped back"
admin PUT builds "{\"$new\": {\"healthy\": false}}" >/dev/null
watch azure_monitor 40
says "rollback after"
says "error_rate (lowest"
says "rolled back (P1, recovery target 120 s)"
serves "$(prod_url)/health" 1.4.2

echo "== Prometheus: a slow 1.5.0 passes the deploy's health gate; the response time fires and 1.4.2 is swapped back"
fresh_sandbox
admin PUT builds "{\"$new\": {\"latency_ms\": 800}}" >/dev/null
echo "   [${SECONDS}s] deploy $new"
play 0 playbooks/deploy-with-auto-rollback.yml -e env=sandbox --limit fundrbolt-api-sandbox -e image="$new"
serves "$(prod_url)/health" 1.5.0
watch prometheus 45
says "rollback after"
says "response_time (lowest"
says "rolled back (P2, recovery target 300 s)"
serves "$(prod_url)/health" 1.4.2
# The trigger's evidence is Prometheus's own numbers about the production slot.
says "over the last 3s (threshold 500.0)"

stop_traffic
echo "automatic rollback by Azure Monitor and by Prometheus behaved (${SECONDS}s)"
