# sre.rollback: two commands do everything on a fresh machine.
#   make demo   installs what it needs, starts the local sandbox, shows an automatic swap-back, stops the sandbox
#   make test   installs what it needs and runs sanity, units, the sandbox's own tests, integration and molecule

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT := $(CURDIR)
PYTHON ?= $(shell tools/find_python.sh)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYVER = $(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
COLLECTION_LINK := .cache/collections/ansible_collections/sre/rollback
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export PATH := $(BIN):$(PATH)
export SRE_SANDBOX_DIR ?= $(ROOT)/.sandbox

.PHONY: help install system-deps demo test sanity units sandbox-tests integration molecule lint build build-check \
        sandbox-start sandbox-stop ee-context awx-tests versions changelog docs-check bench bench-alembic bench-redis bench-k8s bench-detection clean

help:
	@echo "make demo   - run the automatic swap-back demo against the local sandbox"
	@echo "make test   - run every test (sanity, units, sandbox, integration, molecule)"
	@echo "make versions - the oldest supported ansible-core (2.16 on Python 3.11) against the sandbox"
	@echo "make sandbox-start / sandbox-stop - run the sandbox for your own playbook runs"
	@echo "make bench  - compare webapp_slot_swap with the bare SDK and azure_rm_webappslot"
	@echo "make bench-alembic / bench-redis - alembic_migration vs alembic, redis_flush vs redis-cli"
	@echo "make bench-detection - detection latency and recovery time of an automatic P1 slot-swap rollback"
	@echo "make bench-k8s - k8s_rollout_undo vs kubectl and kubernetes.core.k8s_rollback, one Deployment and fleets up to 200"

install: $(VENV)/.installed $(COLLECTION_LINK) system-deps

# Real servers the sandbox runs on loopback (Redis, PostgreSQL, Azurite).
system-deps:
	@tools/install_system_deps.sh

$(VENV)/.installed: requirements.txt tests/requirements.txt
	@echo "== Python: $(PYTHON)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r tests/requirements.txt
	touch $@

# ansible-playbook finds the collection through ansible.cfg's collections_path.
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

demo: install
	tools/demo.sh

sandbox-start: install
	$(PY) tests/sandbox/sandboxctl.py start

sandbox-stop:
	test ! -x $(PY) || $(PY) tests/sandbox/sandboxctl.py stop

test: install
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory changelog
	$(MAKE) --no-print-directory docs-check
	$(MAKE) --no-print-directory awx-tests
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory units
	$(MAKE) --no-print-directory sandbox-tests
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory molecule
	$(MAKE) --no-print-directory build-check
	$(MAKE) --no-print-directory versions
	@echo "== all tests passed"

# ansible-test needs an ansible_collections/sre/rollback path and, offline,
# a local stand-in for the get-pip script it downloads for every venv.
sanity: install
	@echo "== ansible-test sanity"
	$(PY) tools/offline_get_pip.py >/dev/null
	cd "$$($(PY) tools/stage_collection.py)" && ansible-test sanity --venv --python $(PYVER) --color no

units: install
	@echo "== ansible-test units"
	cd "$$($(PY) tools/stage_collection.py)" && ansible-test units --python $(PYVER) --color no

sandbox-tests: install
	@echo "== sandbox tests (the stand-in against the real SDKs)"
	$(PY) -m pytest -q -n 2 -p no:cacheprovider tests/sandbox/tests

# One sandbox per run; ansible-test passes its endpoints to every target through
# integration_config.yml, as its cloud plugins do. With no TARGETS, the targets
# run in two shards side by side, each with its own sandbox and staged copy
# (tools/integration_shards.py: about half the wall time on two cores).
integration: install
	@echo "== ansible-test integration against the sandbox"
ifeq ($(strip $(TARGETS)),)
	$(PY) tools/integration_shards.py --python $(PYVER)
else
	tools/with_sandbox.sh bash -c 'cd "$$($(PY) tools/stage_collection.py)" && \
	  $(PY) $(ROOT)/tools/integration_config.py > tests/integration/integration_config.yml && \
	  ansible-test integration --python $(PYVER) --color no $(TARGETS)'
endif

# The execution environment's build context (ansible-builder create, offline)
# and the AWX controller configuration (surveys, job templates, workflow).
ee-context: install
	tools/ee_context.sh

awx-tests: install
	@echo "== execution environment build context and AWX controller configuration"
	$(PY) -m pytest -q -p no:cacheprovider tests/ee tests/awx

# The oldest ansible-core meta/runtime.yml promises, on Python 3.11 (its own cached venv).
versions: install
	@echo "== the oldest supported ansible-core (meta/runtime.yml requires_ansible) on Python 3.11"
	tools/oldest_supported.sh

changelog: install
	@echo "== changelog fragments lint and the release changelog generates"
	tools/check_changelog.sh

docs-check: install
	@echo "== every plugin's ansible-doc is complete, EXAMPLES runbook-shaped"
	$(PY) tools/check_docs.py

molecule: install
	@echo "== molecule"
	tools/with_sandbox.sh bash -c 'cd roles/app_service_rollback && molecule reset && molecule test --all'

lint: install
	@echo "== ansible-lint (production profile)"
	ansible-lint --profile production roles playbooks

build: install
	ansible-galaxy collection build --force --output-path .cache/dist

build-check: install
	@echo "== the built collection installs and works on its own"
	tools/with_sandbox.sh tools/check_build.sh

bench: install
	tools/with_sandbox.sh $(PY) bench/slot_swap.py

bench-alembic: install
	tools/with_sandbox.sh $(PY) bench/alembic_downgrade.py

bench-redis: install
	$(PY) bench/redis_flush.py

bench-k8s: install
	SRE_SANDBOX_PROVIDERS=kubernetes tools/with_sandbox.sh $(PY) bench/k8s_rollback.py

bench-detection: install
	tools/with_sandbox.sh $(PY) bench/detection_recovery.py

clean: sandbox-stop
	rm -rf .cache .sandbox tests/output
