#!/bin/sh
# millwatch exporter: removes what install.sh installed (service, user, venv). The configuration
# (/etc/millwatch-exporter) and the buffered readings (/var/lib/millwatch-exporter) are kept
# unless --purge is given.
set -eu
PREFIX=/opt/millwatch-exporter
CONFIG_DIR=/etc/millwatch-exporter
UNIT=millwatch-exporter.service
PURGE=0
[ "${1:-}" = "--purge" ] && PURGE=1
[ "$(id -u)" = 0 ] || { echo "uninstall.sh: error: run it as root (sudo)" >&2; exit 1; }

systemctl disable --now "$UNIT" 2>/dev/null || true
rm -f "/etc/systemd/system/$UNIT"
systemctl daemon-reload 2>/dev/null || true
rm -rf "$PREFIX"
if [ "$PURGE" = 1 ]; then
    rm -rf "$CONFIG_DIR" /var/lib/millwatch-exporter
    userdel millwatch-exporter 2>/dev/null || true
    echo "millwatch exporter removed, with its configuration and buffered readings"
else
    echo "millwatch exporter removed; kept $CONFIG_DIR and /var/lib/millwatch-exporter (--purge deletes them)"
fi
