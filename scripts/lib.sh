# shellcheck shell=bash
# Shared helpers for the project's scripts: logging, timing, root check, paths.
# Sourced, never executed.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
# Machine-wide cache (rootfs builds, source tarballs): survives clones, so a second
# run on the same machine reuses what the first one fetched or built.
FLEET_CRIU_CACHE="${FLEET_CRIU_CACHE:-/var/cache/fleet-criu}"
export FLEET_CRIU_CACHE
VENV_DIR="${FLEET_CRIU_VENV:-$REPO_ROOT/.venv}"
export VENV_DIR
# The docs and packaging checkers' venv (tests/tools-requirements.txt).
TOOLS_VENV_DIR="${FLEET_CRIU_TOOLS_VENV:-$REPO_ROOT/.venv-tools}"
export TOOLS_VENV_DIR
# The collection tree Ansible and ansible-test read: ansible_collections/fleet/criu.
BUILD_DIR="$REPO_ROOT/.build"
# Outside the repo: ansible-test skips every file below a hidden directory (.build).
# One per machine, not per clone: ansible-test keeps its sanity venvs below it, and a
# fresh clone (CI) then reuses them.
COLLECTION_DIR="$FLEET_CRIU_CACHE/sanity/ansible_collections/fleet/criu"
export BUILD_DIR COLLECTION_DIR
export MOLECULE_LOCK="${FLEET_CRIU_MOLECULE_LOCK:-/tmp/fleet-criu-molecule.lock}"

_stage_names=()
_stage_secs=()

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mWARNING:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# run_stage NAME CMD...: run a step, remember how long it took and whether it passed.
run_stage() {
  local name="$1"; shift
  local start rc=0
  start=$(date +%s)
  log "stage: $name"
  "$@" || rc=$?
  _stage_names+=("$name")
  if [ "$rc" -eq 0 ]; then
    _stage_secs+=("ok      $(($(date +%s) - start))s")
  else
    _stage_secs+=("FAILED  $(($(date +%s) - start))s (rc=$rc)")
  fi
  return "$rc"
}

print_stage_times() {
  local i
  printf '\n%-34s %s\n' "stage" "result  time" >&2
  for i in "${!_stage_names[@]}"; do
    printf '%-34s %s\n' "${_stage_names[$i]}" "${_stage_secs[$i]}" >&2
  done
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "this needs root (it installs packages, starts dockerd and runs CRIU). Run it again as root, e.g. with sudo."
}

# Copy the git-visible files of the repo into the collection tree. A copy, not a
# symlink: ansible-test insists that its working directory really is
# .../ansible_collections/<namespace>/<name>.
sync_collection() {
  # Keep tests/output: ansible-test caches its sanity venvs there.
  if [ -d "$COLLECTION_DIR" ]; then
    find "$COLLECTION_DIR" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
    find "$COLLECTION_DIR/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} + 2>/dev/null || true
  fi
  mkdir -p "$COLLECTION_DIR"
  (cd "$REPO_ROOT" && git ls-files -co --exclude-standard -z |
    tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$COLLECTION_DIR" -xf -
}

activate_venv() {
  # shellcheck disable=SC1091
  . "$VENV_DIR/bin/activate"
  # Molecule draws its output for the terminal's width (80 when there is none): give
  # summary tables room.
  export COLUMNS="${COLUMNS:-160}"
}

# A stable collections path for Ansible and Molecule: a symlink to the repo, so
# playbooks always run the code as it is in the working tree.
link_collection() {
  local link="$BUILD_DIR/collections/ansible_collections/fleet/criu"
  mkdir -p "$(dirname "$link")"
  [ -L "$link" ] || { rm -rf "$link"; ln -s "$REPO_ROOT" "$link"; }
  export ANSIBLE_COLLECTIONS_PATH="$BUILD_DIR/collections"
}
