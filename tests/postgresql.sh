#!/bin/sh
# The PostgreSQL tests start Debian's server in a temporary folder: install it when missing.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null'
