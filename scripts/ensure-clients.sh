#!/usr/bin/env bash
# Installs what the official-SDK client tests (crates/azure-sim/tests/sdk_clients.rs) need, from the package
# registries only, through their own clients (pip, npm, go):
#   - Python: a virtualenv at .venv with tests/clients/python/requirements.txt (reinstalled only when that file
#     changes: its sha256 is kept in .venv/.podid-requirements.sha256);
#   - Node:   `npm ci` in tests/clients/node when node_modules is missing or older than package-lock.json (its
#     sha256 is kept in node_modules/.podid-lock.sha256);
#   - Go:     `go mod download` in tests/clients/go (the test builds offline from the module cache).
# Quick when everything is in place. A missing toolchain is reported as "<client> tests will be SKIPPED: <reason>"
# and the other clients still get installed.
#
# Usage: source scripts/ensure-clients.sh && ensure_clients
# Returns 0 when every client is ready, 1 when at least one will be skipped. Sets no shell options and exports
# nothing.

_clients_say() { printf '[clients] %s\n' "$*" >&2; }

_clients_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# "major.minor" of a version string such as go1.25.3 or v20.20.2, as a comparable number (major*1000+minor).
_clients_version_num() {
  local v="${1#go}"
  v="${v#v}"
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  case "$major$minor" in *[!0-9]* | "") echo 0; return ;; esac
  echo $((10#$major * 1000 + 10#$minor))
}

_clients_python() {
  local root="$1" venv="$1/.venv" req="$1/tests/clients/python/requirements.txt"
  local stamp="$venv/.podid-requirements.sha256" want py
  if ! py="$(command -v python3)"; then
    _clients_say "python tests will be SKIPPED: python3 is not on PATH"
    return 1
  fi
  want="$(_clients_sha256 "$req")"
  if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    _clients_say "python: $venv is broken (its interpreter does not start): recreating it"
    rm -rf "$venv"
  fi
  if [ ! -x "$venv/bin/python" ]; then
    _clients_say "python: creating the virtualenv $venv with $("$py" --version 2>&1)"
    if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
      _clients_say "python tests will be SKIPPED: '$py -m venv' failed (is the venv module installed?)"
      rm -rf "$venv"
      return 1
    fi
  fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    _clients_say "python: .venv is up to date with tests/clients/python/requirements.txt"
    return 0
  fi
  _clients_say "python: pip install -r tests/clients/python/requirements.txt"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2; then
    _clients_say "python tests will be SKIPPED: pip install failed"
    rm -f "$stamp"
    return 1
  fi
  printf '%s\n' "$want" >"$stamp"
  _clients_say "python: installed $("$venv/bin/python" -m pip freeze 2>/dev/null | grep -E '^(azure-identity|azure-keyvault-secrets|msal)==' | tr '\n' ' ')"
}

_clients_node() {
  local dir="$1/tests/clients/node" node_v lock want stamp
  if ! command -v node >/dev/null 2>&1; then
    _clients_say "node tests will be SKIPPED: node is not on PATH"
    return 1
  fi
  if ! command -v npm >/dev/null 2>&1; then
    _clients_say "node tests will be SKIPPED: npm is not on PATH"
    return 1
  fi
  node_v="$(node --version 2>/dev/null)"
  if [ "$(_clients_version_num "$node_v")" -lt 20000 ]; then
    _clients_say "node tests will be SKIPPED: node $node_v is older than the SDK's minimum (20)"
    return 1
  fi
  lock="$dir/package-lock.json"
  stamp="$dir/node_modules/.podid-lock.sha256"
  want="$(_clients_sha256 "$lock")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    _clients_say "node: tests/clients/node/node_modules is up to date with package-lock.json"
    return 0
  fi
  _clients_say "node: npm ci in tests/clients/node (node $node_v)"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2); then
    _clients_say "node tests will be SKIPPED: npm ci failed"
    return 1
  fi
  printf '%s\n' "$want" >"$stamp"
  _clients_say "node: installed $(cd "$dir" && npm ls --depth=0 2>/dev/null | grep -oE '@azure/[a-z-]+@[0-9.]+' | tr '\n' ' ')"
}

_clients_go() {
  local dir="$1/tests/clients/go" go_v need
  if ! command -v go >/dev/null 2>&1; then
    _clients_say "go tests will be SKIPPED: go is not on PATH"
    return 1
  fi
  go_v="$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null)"
  need="$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$dir/go.mod")"
  if [ "$(_clients_version_num "$go_v")" -lt "$(_clients_version_num "$need")" ]; then
    _clients_say "go tests will be SKIPPED: $go_v is older than the go $need that tests/clients/go/go.mod needs"
    return 1
  fi
  _clients_say "go: go mod download in tests/clients/go ($go_v)"
  if ! (cd "$dir" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go mod download >&2); then
    _clients_say "go tests will be SKIPPED: go mod download failed"
    return 1
  fi
}

ensure_clients() {
  local root status=0
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  _clients_python "$root" || status=1
  _clients_node "$root" || status=1
  _clients_go "$root" || status=1
  return "$status"
}
