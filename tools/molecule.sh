#!/usr/bin/env bash
# shellcheck disable=SC2317  # full and short_default are called through run()
# Runs every Molecule scenario of `make test`, in two lanes at once (the runs wait on
# podman, apt and the network far more than on the CPU):
#   lane 1: `default` in full on the first release of DEBIAN_RELEASES;
#   lane 2: `default` on the other releases (create, converge, idempotence, verify, without the
#           tests marked platform_independent);
#   then both lanes take the scenarios of MOLECULE_SCENARIOS (on the first release) from a
#   shared queue, in order (longest first), each lane the next one when it is free.
# Each lane has its own controller: LANE1_BIN and LANE2_BIN name a venv's bin directory (make
# passes the newest ansible-core for lane 1, the oldest for lane 2; unset: the PATH's). With
# LANE1_STRICT=1 (make's default) lane 1 runs the way a hardened controller of today does:
# inject_facts_as_vars off, and a deprecation warning of this collection's own code in a run's
# log fails that run (tools/deprecations.py).
# Host packages and base images are prepared first, before the lanes start.
# Each run has its own ephemeral directory and containers (the lab name carries scenario and
# release), and its own log under .cache/molecule-logs/; a failed run's log is printed whole,
# a passed run's test summary only. Exit status: non-zero when any run failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

read -r -a releases <<<"${DEBIAN_RELEASES:-13 12}"
read -r -a scenarios <<<"${MOLECULE_SCENARIOS-ha faults acme operations seed}"
first=${releases[0]}
logs=.cache/molecule-logs
rm -rf "$logs"
mkdir -p "$logs"

stamp() { date +%H:%M:%S; }

# run NAME COMMAND...: one Molecule run with its own ephemeral directory and log.
run() {
  local name=$1
  shift
  local log=$logs/$name.log started=$SECONDS rc=0
  echo "[$(stamp)] start  $name (ansible-core $(ansible --version | sed -n '1s/.*core \([0-9.]*\).*/\1/p')$([ "${WEBINFRA_STRICT:-0}" = 1 ] && echo ', inject_facts_as_vars off, deprecations fail'))"
  # Every log line carries the time it was written: where a run spends its time (create,
  # converge, idempotence, verify) reads off its log.
  (export MOLECULE_EPHEMERAL_DIRECTORY=$PWD/.cache/molecule-ephemeral/$name; "$@") 2>&1 \
    | python3 -u -c 'import sys, time
for line in sys.stdin:
    sys.stdout.write(time.strftime("%H:%M:%S ") + line)' >"$log" || rc=$?
  if [ "$rc" -eq 0 ] && [ "${WEBINFRA_STRICT:-0}" = 1 ] && ! python3 tools/deprecations.py "$log" >"$log.deprecations"; then
    cat "$log.deprecations" >>"$log"
    echo "[$(stamp)] $name: deprecation warnings of this collection's code (the end of its log lists them)"
    rc=1
  fi
  if [ "$rc" -eq 0 ]; then
    echo "[$(stamp)] passed $name in $((SECONDS - started)) s: $(grep -aE '[0-9]+ passed' "$log" | tail -1 | sed -E 's/\x1b\[[0-9;]*m//g; s/^[^=]*=+ *//; s/ *=+ *$//')"
  else
    echo "[$(stamp)] FAILED $name after $((SECONDS - started)) s (exit $rc): its log follows at the end"
    echo "$name" >>"$logs/FAILED"
  fi
  return "$rc"
}

full() { WEBINFRA_DEBIAN=$1 molecule test -s "$2"; }

short_default() {
  export WEBINFRA_DEBIAN=$1 PYTEST_ADDOPTS='-m "not platform_independent"'
  local rc=0
  molecule destroy -s default >/dev/null || true
  molecule create -s default && molecule converge -s default && molecule idempotence -s default \
    && molecule verify -s default || rc=$?
  molecule destroy -s default >/dev/null || true
  return "$rc"
}

# The scenarios of MOLECULE_SCENARIOS form a queue: each lane, once its `default` run is done,
# claims the next one (an atomic rename), so the lanes end close together whatever each run takes.
queue=$logs/queue
mkdir -p "$queue/claimed"
i=0
for scenario in "${scenarios[@]}"; do
  i=$((i + 1))
  echo "$scenario" >"$queue/$(printf '%02d' "$i")"
done

drain_queue() {
  local rc=0 item candidate scenario
  while true; do
    item=""
    for candidate in "$queue"/[0-9]*; do
      [ -e "$candidate" ] || break
      if mv "$candidate" "$queue/claimed/" 2>/dev/null; then
        item=$queue/claimed/$(basename "$candidate")
        break
      fi
    done
    [ -n "$item" ] || return "$rc"
    scenario=$(cat "$item")
    run "$scenario-d$first" full "$first" "$scenario" || rc=1
  done
}

# use_controller BIN STRICT: this lane's ansible (and Molecule, pytest) come from BIN.
use_controller() {
  [ -n "$1" ] && export PATH="$1:$PATH"
  if [ "$2" = 1 ]; then
    export ANSIBLE_INJECT_FACT_VARS=False WEBINFRA_STRICT=1
  fi
}

lane1() {
  local rc=0
  use_controller "${LANE1_BIN:-}" "${LANE1_STRICT:-1}"
  run "default-d$first" full "$first" default || rc=1
  drain_queue || rc=1
  return "$rc"
}

lane2() {
  local rc=0 release
  use_controller "${LANE2_BIN:-}" 0
  for release in "${releases[@]:1}"; do
    run "default-d$release" short_default "$release" || rc=1
  done
  drain_queue || rc=1
  return "$rc"
}

started=$SECONDS
# WEBINFRA_MITOGEN=1 (make molecule-mitogen): every Ansible run of the scenarios, the tests' own
# playbook runs included, uses Mitogen's strategy (requirements-bench.txt). Mitogen's SSH command
# line enforces host keys whenever Ansible checks them: off for the labs' throw-away containers.
if [ "${WEBINFRA_MITOGEN:-0}" = 1 ]; then
  if ! plugins=$(python3 -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__) + "/plugins/strategy")'); then
    echo "Molecule: WEBINFRA_MITOGEN=1 needs mitogen (pip install -r requirements-bench.txt -c constraints.txt)"
    exit 1
  fi
  export ANSIBLE_STRATEGY_PLUGINS=$plugins ANSIBLE_STRATEGY=mitogen_linear ANSIBLE_HOST_KEY_CHECKING=False
  echo "[$(stamp)] every Ansible run uses Mitogen's strategy ($plugins)"
fi
# Host packages (podman, runc, debootstrap, ssh) and the base images of every release, once and
# before the lanes start: on a new machine both lanes would otherwise install packages and build
# the same image at the same moment (tools/lab.py also serializes them under a lock).
image_args=()
for release in "${releases[@]}"; do
  image_args+=(--debian "$release")
done
echo "[$(stamp)] host packages and base images (tools/lab.py image ${image_args[*]})"
if ! python3 tools/lab.py image "${image_args[@]}"; then
  echo "Molecule: host set-up failed (tools/lab.py image); no scenario ran"
  exit 1
fi
echo "[$(stamp)] host set-up done in $((SECONDS - started)) s"
lane1 &
pid1=$!
lane2 &
pid2=$!
status=0
wait "$pid1" || status=1
wait "$pid2" || status=1
# The failed runs' logs, one after the other (the lanes ran at once).
if [ -f "$logs/FAILED" ]; then
  while read -r name; do
    echo "==> log of the FAILED run $name ($logs/$name.log)"
    sed -E 's/^/    | /' "$logs/$name.log"
  done <"$logs/FAILED"
  # Last, so that the end of a long CI log names them: each failed run's failed tests and the
  # first lines of their assertion messages (pytest's "E" lines), or its last Ansible failure.
  while read -r name; do
    echo "==> FAILED run $name: what failed"
    sed -E 's/\x1b\[[0-9;]*m//g; s/^[0-9:]{8} //; s/^ *│ ?//' "$logs/$name.log" \
      | grep -aE '^(FAILED|ERROR) |^E  |fatal: |failed: \[' | head -40 | cut -c1-400 | sed -E 's/^/    | /'
  done <"$logs/FAILED"
fi
echo "Molecule: all runs $([ "$status" -eq 0 ] && echo passed || echo 'done, some FAILED') in $((SECONDS - started)) s"
exit "$status"
