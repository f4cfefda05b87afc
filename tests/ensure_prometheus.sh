#!/usr/bin/env bash
# The multi-host tests scrape labwall instances with a real Prometheus server, so install Debian's
# package when the binary is missing. Only the binary is used (tests start it on a loopback port):
# the package's own service must never start, with or without systemd.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
echo "ensure_prometheus: prometheus not found, installing Debian's package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# invoke-rc.d and deb-systemd-invoke ask policy-rc.d; exit code 101 means "do not start services".
POLICY=/usr/sbin/policy-rc.d
SAVED=""
if [ -e "$POLICY" ]; then
  SAVED="$(mktemp)"
  $SUDO cp -p "$POLICY" "$SAVED"
fi
restore_policy() {
  if [ -n "$SAVED" ]; then
    $SUDO cp -p "$SAVED" "$POLICY"
    rm -f "$SAVED"
  else
    $SUDO rm -f "$POLICY"
  fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
$SUDO chmod 755 "$POLICY"

$SUDO apt-get update -qq
# No recommends: they would pull in prometheus-node-exporter, another service.
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# On a machine booted with systemd the package enables its unit for the next boot: undo that too.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
command -v prometheus >/dev/null
