# webinfra.distributed - developer and lab entry points.
#   make lab       bring up the local lab (podman hosts) and deploy site.yml onto it
#   make test      everything CI runs: lint, sanity, unit, collection build, Molecule
#   make lab-down  remove the lab
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# Two controllers, the two ends of meta/runtime.yml's requires_ansible, each with its own venv:
#   $(VENV)         python3 (3.11+), constraints.txt: ansible 12 / ansible-core 2.19, the oldest.
#                   The linters, the lab and the benchmarks use it too.
#   $(VENV_NEWEST)  Python 3.12+ (tools/newest_python.sh finds one; or set PYTHON_NEWEST),
#                   constraints-newest.txt: ansible 14 / ansible-core 2.21, the newest.
# make test runs sanity, the unit tests, the artifact check and Molecule lanes on both.
VENV_NEWEST ?= .venv-newest
BIN_NEWEST := $(CURDIR)/$(VENV_NEWEST)/bin
PYTHON_NEWEST ?= $(shell tools/newest_python.sh)
LAB_INVENTORY ?= inventories/lab
# Debian releases the default Molecule scenario runs on.
DEBIAN_RELEASES ?= 13 12
# Further Molecule scenarios, run on the first release only (longest first: tools/molecule.sh
# hands them to whichever lane is free).
MOLECULE_SCENARIOS ?= ha faults acme operations seed
COLLECTION_LINK := .cache/collections/ansible_collections/webinfra/distributed

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections
export ANSIBLE_FORCE_COLOR ?= 1
export PY_COLORS ?= 1

.PHONY: help venv venv-newest collection-link lab lab-up lab-deploy lab-status lab-down bench test lint sanity unit build-check molecule molecule-mitogen release clean

help:
	@echo "make lab       - create the lab hosts and deploy the stack (https://127.0.0.1:8443/)"
	@echo "make test      - lint, sanity, unit tests, collection build, Molecule on Debian $(DEBIAN_RELEASES)"
	@echo "make bench     - benchmarks on the lab (after make lab): results in bench/results/"
	@echo "make lab-down  - remove the lab's containers and network"
	@echo "make lab-status- list the lab's containers"

# --- set-up -----------------------------------------------------------------------------------
$(VENV)/.installed: requirements-dev.txt constraints.txt
	@echo "==> Python virtualenv $(VENV) with Ansible, Molecule and linters"
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || $(PYTHON) tools/lab.py deps --python-venv
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -r requirements-dev.txt -c constraints.txt
	@touch $@

venv: $(VENV)/.installed

$(VENV_NEWEST)/.installed: requirements-test.txt constraints-newest.txt
	@echo "==> Python virtualenv $(VENV_NEWEST) with the newest ansible-core, Molecule and Testinfra"
	@test -n "$(PYTHON_NEWEST)" || { echo "make: the newest ansible-core needs Python 3.12 or later and none was found (python3.12+ on PATH, or pyenv's): install one, or name it with PYTHON_NEWEST=/path/to/python3.12" >&2; exit 1; }
	@test -x $(BIN_NEWEST)/python || $(PYTHON_NEWEST) -m venv $(VENV_NEWEST)
	@$(BIN_NEWEST)/python -m pip install -q --upgrade pip
	@$(BIN_NEWEST)/python -m pip install -q -r requirements-test.txt -c constraints-newest.txt
	@touch $@

venv-newest: $(VENV_NEWEST)/.installed

# The checkout as webinfra.distributed on the collections path, and ansible.mysql (a dependency
# the oldest `ansible` bundle lacks; users there get it from Galaxy) from the newest bundle's
# wheel: tools/bundled_collections.py.
collection-link: venv
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)
	@$(BIN)/python tools/bundled_collections.py --dest .cache/collections ansible.mysql >/dev/null

# --- lab --------------------------------------------------------------------------------------
lab: lab-up lab-deploy
	@echo
	@echo "==> The stack answers on https://127.0.0.1:8443/ (round robin over the web servers);"
	@echo "    its certificate comes from the lab's CA: $(LAB_INVENTORY)/.pki/ca.crt"
	@$(BIN)/python tools/lab.py probe --url https://127.0.0.1:8443/ --cafile $(LAB_INVENTORY)/.pki/ca.crt \
	  --redirect-from http://127.0.0.1:8080/ --count 6 --expect 2 --notes
	@echo "    Try: curl --cacert $(LAB_INVENTORY)/.pki/ca.crt https://127.0.0.1:8443/"
	@echo "    Prometheus (every tier's metrics and the alerts): https://127.0.0.1:9090/"
	@echo "    The stack's overview page (served by Prometheus): https://127.0.0.1:9090/consoles/webinfra.html"
	@echo "    (login: admin / lab-monitoring-password, monitoring_web_password in $(LAB_INVENTORY)/group_vars/all.yml)"

lab-up: venv collection-link
	@echo "==> Lab hosts (tools/lab.py up -i $(LAB_INVENTORY))"
	@$(BIN)/python tools/lab.py up -i $(LAB_INVENTORY)

lab-deploy: venv collection-link
	@echo "==> Deploying site.yml onto the lab"
	@ansible-playbook -i $(LAB_INVENTORY) site.yml

# Benchmarks on the lab: deploy times, wrk through the balancer vs direct, a backend kill under
# load, sysbench with replica lag, the overview page in Chromium, backups, the HA lab's
# failovers; then the charts (tools/charts.py). Re-creates the lab hosts for the fresh-deploy
# timing. BENCH_DOCS=1 also copies the charts to docs/images/ for docs/BENCHMARKS.md.
$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt constraints.txt
	@echo "==> matplotlib for the benchmark's charts"
	@$(BIN)/python -m pip install -q -r requirements-bench.txt -c constraints.txt
	@touch $@

bench: venv $(VENV)/.bench-installed collection-link
	@$(BIN)/python tools/bench -i $(LAB_INVENTORY) $(if $(BENCH_ONLY),--only $(BENCH_ONLY),)
	@$(BIN)/python tools/charts.py bench/results/latest.json --history docs/deploy-history.json $(if $(BENCH_DOCS),--docs docs/images,)

lab-status:
	@$(PYTHON) tools/lab.py status

lab-down:
	@$(PYTHON) tools/lab.py down --lab webinfra-lab

# --- tests ------------------------------------------------------------------------------------
# Molecule's host packages and base images (tools/lab.py image: apt and debootstrap, mostly
# waiting on the network and the disk) are prepared in the background while the checks run;
# apt runs of both sides wait for each other (the lab tool's host set-up lock, dpkg's lock).
test:
	@mkdir -p .cache
	@echo "==> host packages and base images for Molecule, in the background (log: .cache/host-setup.log)"
	@python3 tools/lab.py image $(addprefix --debian ,$(DEBIAN_RELEASES)) >.cache/host-setup.log 2>&1 & setup=$$!; \
	  rc=0; $(MAKE) --no-print-directory lint sanity unit build-check || rc=$$?; \
	  if ! wait $$setup; then echo "make test: host set-up failed (tools/lab.py image):"; cat .cache/host-setup.log; exit 1; fi; \
	  echo "==> host set-up done: $$(tail -1 .cache/host-setup.log)"; \
	  [ $$rc -eq 0 ] || exit $$rc; \
	  $(MAKE) --no-print-directory molecule
	@echo "==> make test: all passed"

lint: venv collection-link
	@echo "==> yamllint"
	@yamllint -s .
	@echo "==> ruff"
	@ruff check .
	@ruff format --check .
	@echo "==> ansible-lint (production profile)"
	@ansible-lint --offline --profile production
	@echo "==> antsibull-changelog lint, docs/VARIABLES.md up to date, antsibull-docs collection docs lint"
	@antsibull-changelog lint
	@python tools/variables_doc.py --check
	@antsibull-docs lint-collection-docs --plugin-docs $(COLLECTION_LINK)
	@echo "==> ansible-builder introspect (meta/execution-environment.yml)"
	@tools/ee_check.sh .cache/collections
	@echo "==> galaxy-importer on the built artifact"
	@tools/importer_check.sh

# Both controllers at once (tools/parallel.sh prints each one's output whole when both ended).
sanity: venv venv-newest
	@echo "==> ansible-test sanity on both controllers at once"
	@tools/parallel.sh \
	  "ansible-test sanity, ansible-core $$($(BIN)/python -c 'import ansible; print(ansible.__version__)') (oldest)" \
	  "VENV=$(VENV) tools/sanity.sh" \
	  "ansible-test sanity, ansible-core $$($(BIN_NEWEST)/python -c 'import ansible; print(ansible.__version__)') (newest)" \
	  "VENV=$(VENV_NEWEST) tools/sanity.sh"

unit: venv venv-newest collection-link
	@echo "==> unit tests on both controllers at once"
	@tools/parallel.sh \
	  "unit tests, Python $$($(BIN)/python -c 'import platform; print(platform.python_version())') (oldest controller)" \
	  "$(BIN)/pytest -q -p no:cacheprovider --basetemp=.cache/pytest-oldest tests/unit" \
	  "unit tests, Python $$($(BIN_NEWEST)/python -c 'import platform; print(platform.python_version())') (newest controller)" \
	  "$(BIN_NEWEST)/pytest -q -p no:cacheprovider --basetemp=.cache/pytest-newest tests/unit"

build-check: venv venv-newest
	@echo "==> collection artifact: build, install offline beside each controller's ansible bundle, ansible-doc"
	@tools/build-check.sh $(VENV) $(VENV_NEWEST)

# The default scenario runs in full on the first release (Debian 13). On the other releases it
# runs create, converge, idempotence and verify, without the preflight-only checks (marked
# platform_independent): what differs between releases is the software, not the input checks.
# The other scenarios run on the first release. tools/molecule.sh runs them in two lanes at once.
molecule: venv venv-newest collection-link
	@echo "==> Molecule: default on Debian $(firstword $(DEBIAN_RELEASES)) (newest ansible-core) | default on Debian $(wordlist 2,9,$(DEBIAN_RELEASES)) (oldest), then $(MOLECULE_SCENARIOS)"
	@DEBIAN_RELEASES="$(DEBIAN_RELEASES)" MOLECULE_SCENARIOS="$(MOLECULE_SCENARIOS)" \
	  LANE1_BIN=$(BIN_NEWEST) LANE2_BIN=$(BIN) tools/molecule.sh

# The same Molecule runs with Mitogen's strategy for every Ansible run (an optional accelerator,
# docs/BENCHMARKS.md): e.g. make molecule-mitogen DEBIAN_RELEASES=13 MOLECULE_SCENARIOS=ha
molecule-mitogen: venv $(VENV)/.bench-installed collection-link
	@echo "==> Molecule with Mitogen's strategy: default on Debian $(DEBIAN_RELEASES), then $(MOLECULE_SCENARIOS)"
	@WEBINFRA_MITOGEN=1 DEBIAN_RELEASES="$(DEBIAN_RELEASES)" MOLECULE_SCENARIOS="$(MOLECULE_SCENARIOS)" tools/molecule.sh

# A release of the version in galaxy.yml (the one version source): changelog release (the
# fragments become CHANGELOG.rst), a commit, the artifact built and checked, tag v<version>.
release: venv venv-newest collection-link
	@tools/release.sh

clean: lab-down
	@rm -rf .cache tests/output webinfra-distributed-*.tar.gz $(VENV_NEWEST)
