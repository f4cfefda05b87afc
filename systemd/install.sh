#!/usr/bin/env bash
# Install, upgrade or remove labwall as a systemd service. Run as root from a checkout:
#   sudo systemd/install.sh            # install or upgrade (idempotent), enable and (re)start
#   sudo systemd/install.sh uninstall  # stop, disable, remove; keeps /etc/labwall/config.yaml
#
# Layout: /opt/labwall/app (the code), /opt/labwall/venv (its own virtual environment),
# /etc/labwall/config.yaml (yours: never overwritten; the shipped defaults go next to it as
# config.yaml.default), /etc/systemd/system/labwall.service, system user `labwall`
# (/etc/sysusers.d/labwall.conf), state in /var/lib/labwall (created by systemd).
#
# Environment:
#   PYTHON     interpreter that creates the venv (default python3; needs 3.11 or newer)
#   DESTDIR    install into this root instead of / (tests, image builds); needs SYSTEMCTL set too
#   SYSTEMCTL  systemctl command (default systemctl; e.g. "true" to skip, or a fake in tests)
#   LABWALL_NO_START=1   enable the unit but do not start or restart it
set -euo pipefail
umask 022  # the service user must be able to read what we install, whatever the caller's umask

ACTION=${1:-install}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
PYTHON=${PYTHON:-python3}
UNIT=labwall.service

PREFIX=/opt/labwall
APP=$PREFIX/app
VENV=$PREFIX/venv
CONFIG_DIR=/etc/labwall
UNIT_PATH=/etc/systemd/system/$UNIT
SYSUSERS_PATH=/etc/sysusers.d/labwall.conf

# What gets copied to /opt/labwall/app: the program, its defaults and its docs. Nothing else.
APP_FILES=(main.py config.yaml pyproject.toml README.md LICENSE)
APP_DIRS=(monitor collectors systemd)

CHANGED=0

say() { printf 'labwall install: %s\n' "$*"; }
die() { printf 'labwall install: error: %s\n' "$*" >&2; exit 1; }

if [[ -n "$DESTDIR" && -z "${SYSTEMCTL:-}" ]]; then
    die "DESTDIR is set: set SYSTEMCTL too (e.g. SYSTEMCTL=true), so that the host's own labwall is left alone"
fi
SYSTEMCTL=${SYSTEMCTL:-systemctl}
if [[ -z "$DESTDIR" && $(id -u) -ne 0 ]]; then
    die "run as root (sudo $0 ${ACTION})"
fi

systemctl_() { $SYSTEMCTL "$@"; }

# put SRC DEST MODE: copy only when the content or mode differs, so a re-run touches nothing.
put() {
    local src=$1 dest=$DESTDIR$2 mode=$3
    if [[ -f "$dest" ]] && cmp -s "$src" "$dest" && [[ $(stat -c %a "$dest") == "${mode#0}" ]]; then
        return 0
    fi
    install -D -m "$mode" "$src" "$dest"
    CHANGED=1
}

ensure_dir() {  # ensure_dir PATH MODE
    if [[ ! -d "$DESTDIR$1" ]]; then
        install -d -m "$2" "$DESTDIR$1"
        CHANGED=1
    fi
}

app_sources() {  # every file to ship, relative to SRC, one per line
    local f
    for f in "${APP_FILES[@]}"; do
        [[ -f "$SRC/$f" ]] && printf '%s\n' "$f"
    done
    (cd "$SRC" && find "${APP_DIRS[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort)
}

install_user() {
    put "$SRC/systemd/labwall.sysusers" "$SYSUSERS_PATH" 0644
    command -v systemd-sysusers >/dev/null || die "systemd-sysusers not found: is this a systemd machine?"
    if [[ -n "$DESTDIR" ]]; then
        systemd-sysusers --root="$DESTDIR" labwall.conf
    else
        systemd-sysusers labwall.conf
    fi
}

install_app() {
    ensure_dir "$PREFIX" 0755
    ensure_dir "$APP" 0755
    local rel wanted
    wanted=$(app_sources)
    while IFS= read -r rel; do
        [[ -n "$rel" ]] && put "$SRC/$rel" "$APP/$rel" 0644
    done <<<"$wanted"
    # Files an older version shipped and this one does not: remove them (the code is ours, not yours).
    while IFS= read -r rel; do
        if ! grep -qxF "$rel" <<<"$wanted"; then
            rm -f "$DESTDIR$APP/$rel"
            CHANGED=1
        fi
    done < <(cd "$DESTDIR$APP" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | sed 's|^\./||' | LC_ALL=C sort)
    find "$DESTDIR$APP" -mindepth 1 -type d -empty -delete
}

install_venv() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is older than 3.11; install python3.11 (or newer) and run again with PYTHON=python3.11"
    if [[ ! -x "$DESTDIR$VENV/bin/python" ]] || ! "$DESTDIR$VENV/bin/python" -c '' 2>/dev/null; then
        say "creating the virtual environment in $VENV"
        rm -rf "$DESTDIR$VENV"
        "$PYTHON" -m venv "$DESTDIR$VENV" \
            || die "could not create a venv (on Debian/Ubuntu: apt install python3-venv)"
        CHANGED=1
    fi
    # The dependencies named in pyproject.toml; pip runs only when that list changed.
    local requirements
    requirements=$(mktemp)
    "$PYTHON" - "$SRC/pyproject.toml" >"$requirements" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
EOF
    if ! cmp -s "$requirements" "$DESTDIR$VENV/labwall-requirements.txt"; then
        say "installing dependencies into $VENV"
        "$DESTDIR$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        install -m 0644 "$requirements" "$DESTDIR$VENV/labwall-requirements.txt"
        CHANGED=1
    fi
    rm -f "$requirements"
    # The service cannot write /opt (ProtectSystem=strict): compile now so it never has to.
    "$DESTDIR$VENV/bin/python" -m compileall -q "$DESTDIR$APP" >/dev/null
}

install_config() {
    ensure_dir "$CONFIG_DIR" 0755
    put "$SRC/config.yaml" "$CONFIG_DIR/config.yaml.default" 0644
    if [[ ! -e "$DESTDIR$CONFIG_DIR/config.yaml" ]]; then
        install -m 0644 "$SRC/config.yaml" "$DESTDIR$CONFIG_DIR/config.yaml"
        say "wrote $CONFIG_DIR/config.yaml (the documented defaults; edit it, then: systemctl restart labwall)"
        CHANGED=1
    fi
}

do_install() {
    [[ -f "$SRC/main.py" && -f "$SRC/systemd/$UNIT" ]] || die "run this from a labwall checkout ($SRC has no main.py)"
    install_user
    install_app
    install_venv
    install_config
    put "$SRC/systemd/$UNIT" "$UNIT_PATH" 0644
    systemctl_ daemon-reload
    systemctl_ enable "$UNIT"
    if [[ "${LABWALL_NO_START:-0}" == 1 ]]; then
        say "installed; not started (LABWALL_NO_START=1)"
    elif [[ $CHANGED == 1 ]]; then
        systemctl_ restart "$UNIT"
        say "installed and (re)started: systemctl status labwall; journalctl -u labwall -f"
    else
        systemctl_ start "$UNIT"  # a no-op when it already runs
        say "already up to date: nothing changed"
    fi
}

do_uninstall() {
    if [[ -e "$DESTDIR$UNIT_PATH" ]]; then
        systemctl_ disable --now "$UNIT" || true
        rm -f "$DESTDIR$UNIT_PATH"
        systemctl_ daemon-reload
    fi
    rm -rf "$DESTDIR$PREFIX" "$DESTDIR/var/lib/labwall" "$DESTDIR/var/cache/labwall"
    rm -f "$DESTDIR$SYSUSERS_PATH" "$DESTDIR$CONFIG_DIR/config.yaml.default"
    say "removed labwall; kept $CONFIG_DIR/config.yaml and the user 'labwall'"
    say "to remove those too: userdel labwall && rm -r $CONFIG_DIR"
}

case "$ACTION" in
    install) do_install ;;
    uninstall) do_uninstall ;;
    *) die "usage: $0 [install|uninstall]" ;;
esac
