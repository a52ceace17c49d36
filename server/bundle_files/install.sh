#!/bin/sh
# millwatch exporter @VERSION@: offline installer for Linux (@PLATFORM@, Python @PYTHON_VERSION@).
# Nothing is downloaded: every wheel is in ./wheels. Run as root from the unzipped folder:
#     sudo sh install.sh                       asks for the machine's values, then `init` writes the config
#     sudo sh install.sh --machine-id press_01 --name "Press 01" --serial-port /dev/ttyUSB0 \
#         --central-host 10.0.0.5              the same without questions
#     sudo sh install.sh --config exporter.yaml   installs a configuration written beforehand
# It creates a venv in /opt/millwatch-exporter, the config /etc/millwatch-exporter/exporter.yaml,
# the system user millwatch-exporter (in group dialout, for the serial port) and the systemd unit
# millwatch-exporter.service, started now and at every boot. --no-service skips user and unit
# (for a test or a hand-run exporter; then root is not needed with --prefix and --config-dir).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/millwatch-exporter
CONFIG_DIR=/etc/millwatch-exporter
PYTHON=python3
CONFIG_FILE=
SERVICE=1
MACHINE_ID=
NAME=
SERIAL_PORT=
BAUDRATE=9600
LISTEN=0.0.0.0:9817
CENTRAL_HOST=
UNIT=millwatch-exporter.service
USER_NAME=millwatch-exporter

usage() {
    cat <<USAGE
usage: sh install.sh [--config FILE | --machine-id ID --name NAME --serial-port PORT
                     [--baudrate N] [--listen HOST:PORT] --central-host HOST]
                     [--prefix DIR] [--config-dir DIR] [--python PYTHON] [--no-service]
USAGE
}

fail() {
    echo "install.sh: error: $*" >&2
    exit 1
}

need_value() {
    [ $# -ge 2 ] || { echo "install.sh: error: $1 needs a value" >&2; usage >&2; exit 2; }
}

while [ $# -gt 0 ]; do
    case "$1" in
        --config) need_value "$@"; CONFIG_FILE=$2; shift 2 ;;
        --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
        --config-dir) need_value "$@"; CONFIG_DIR=$2; shift 2 ;;
        --python) need_value "$@"; PYTHON=$2; shift 2 ;;
        --machine-id) need_value "$@"; MACHINE_ID=$2; shift 2 ;;
        --name) need_value "$@"; NAME=$2; shift 2 ;;
        --serial-port) need_value "$@"; SERIAL_PORT=$2; shift 2 ;;
        --baudrate) need_value "$@"; BAUDRATE=$2; shift 2 ;;
        --listen) need_value "$@"; LISTEN=$2; shift 2 ;;
        --central-host) need_value "$@"; CENTRAL_HOST=$2; shift 2 ;;
        --no-service) SERVICE=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: error: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

CONFIG="$CONFIG_DIR/exporter.yaml"
VENV="$PREFIX/venv"

if [ "$SERVICE" = 1 ] && [ "$(id -u)" != 0 ]; then
    fail "run it as root (sudo sh install.sh), or with --no-service --prefix DIR --config-dir DIR"
fi

echo "[1/5] Python"
command -v "$PYTHON" >/dev/null 2>&1 || fail "$PYTHON not found: install Python 3.9 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || fail "$PYTHON is older than 3.9"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
    || fail "$PYTHON cannot make a venv: install the python3-venv package of your distribution"
"$PYTHON" -c 'import sys; print("      Python", sys.version.split()[0], "at", sys.executable)'

echo "[2/5] Exporter into $PREFIX"
if [ "$SERVICE" = 1 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl stop "$UNIT" 2>/dev/null || true
fi
mkdir -p "$PREFIX"
"$PYTHON" -m venv --clear "$VENV" \
    || fail "$PYTHON cannot make a venv: install the python3-venv package of your distribution"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet --no-index \
    --find-links "$HERE/wheels" @DISTRIBUTION@ \
    || fail "the wheels do not fit this Python (the bundle is for @PLATFORM@, Python @PYTHON_VERSION@): \
build one on the central host with millwatch bundle --platform @PLATFORM@ --python-version X.Y -o DIR"
cp "$HERE/setup_helper.py" "$HERE/uninstall.sh" "$HERE/exporter.example.yaml" "$PREFIX/"

echo "[3/5] Configuration $CONFIG"
mkdir -p "$CONFIG_DIR"
if [ -n "$CONFIG_FILE" ]; then
    "$VENV/bin/python" "$PREFIX/setup_helper.py" check "$CONFIG_FILE" || fail "$CONFIG_FILE is not valid"
    if [ "$(cd "$(dirname "$CONFIG_FILE")" && pwd)/$(basename "$CONFIG_FILE")" != "$CONFIG" ]; then
        cp "$CONFIG_FILE" "$CONFIG"
    fi
elif [ -f "$CONFIG" ] && [ -z "$MACHINE_ID" ]; then
    echo "      keeping the existing configuration (give --machine-id ... to write a new one)"
else
    if [ -t 0 ]; then
        echo "      Serial ports of this PC:"
        "$VENV/bin/millwatch-exporter" ports || true
        [ -n "$MACHINE_ID" ] || { printf '      Machine id (e.g. press_01): '; read -r MACHINE_ID; }
        [ -n "$NAME" ] || { printf '      Machine name shown on the map: '; read -r NAME; }
        [ -n "$SERIAL_PORT" ] || { printf '      Serial port of the sensor (e.g. /dev/ttyUSB0): '; read -r SERIAL_PORT; }
        [ -n "$CENTRAL_HOST" ] || { printf '      Central millwatch host (IP or name): '; read -r CENTRAL_HOST; }
    fi
    [ -n "$MACHINE_ID" ] && [ -n "$SERIAL_PORT" ] && [ -n "$CENTRAL_HOST" ] \
        || fail "give --machine-id, --serial-port and --central-host (or --config FILE); see --help"
    "$VENV/bin/millwatch-exporter" init --output "$CONFIG" --machine-id "$MACHINE_ID" \
        --name "${NAME:-$MACHINE_ID}" --serial-port "$SERIAL_PORT" --baudrate "$BAUDRATE" \
        --listen "$LISTEN" --central-host "$CENTRAL_HOST" --non-interactive --force \
        || fail "the values were refused (see above)"
fi
"$VENV/bin/python" "$PREFIX/setup_helper.py" check "$CONFIG" || fail "$CONFIG is not valid"

if [ "$SERVICE" = 0 ]; then
    echo "[4/5] Service: skipped (--no-service)"
    echo "[5/5] Start it by hand:"
    echo "      $VENV/bin/millwatch-exporter --config $CONFIG"
    exit 0
fi

echo "[4/5] Service $UNIT (user $USER_NAME)"
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$USER_NAME"
fi
if getent group dialout >/dev/null 2>&1; then
    usermod -a -G dialout "$USER_NAME"
fi
chown "root:$USER_NAME" "$CONFIG"
chmod 0640 "$CONFIG"
sed -e "s|__PREFIX__|$PREFIX|g" -e "s|__CONFIG__|$CONFIG|g" "$HERE/$UNIT" > "/etc/systemd/system/$UNIT"
systemctl daemon-reload
systemctl enable "$UNIT" >/dev/null 2>&1
systemctl restart "$UNIT"

echo "[5/5] Waiting for the exporter to answer"
"$VENV/bin/python" "$PREFIX/setup_helper.py" wait "$CONFIG" --timeout 60 \
    || fail "the exporter did not answer: journalctl -u $UNIT"
echo "Done. Uninstall with: sudo sh $PREFIX/uninstall.sh"
