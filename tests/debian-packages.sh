#!/bin/sh
# The tests drive Debian's chromium (status page), start Debian's PostgreSQL (store) and run
# the Prometheus rules' unit tests with promtool; docs/getting-started.md (and its test) uses
# curl: install whichever is missing, in one go.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null"
