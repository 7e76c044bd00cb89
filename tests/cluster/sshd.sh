#!/usr/bin/env bash
# OpenSSH's server for the ssh tests (docs: README "make test-ssh"). The tests start their own
# servers (tests/sshd.py: `sshd -D -f CONF` on 127.0.0.1 only, on free ports, keys in temp
# folders) and stop them; this only makes sure `sshd` and `ssh-keygen` are installed.
#   tests/cluster/sshd.sh install   root and apt: install openssh-server (and the client) if
#                                   sshd is missing, without starting the system's ssh service
#                                   (a policy-rc.d that denies it, only for the install)
set -euo pipefail

have() {
    { command -v sshd >/dev/null || [ -x /usr/sbin/sshd ]; } && command -v ssh >/dev/null \
        && command -v ssh-keygen >/dev/null
}

install() {
    have && return 0
    export DEBIAN_FRONTEND=noninteractive
    POLICY=/usr/sbin/policy-rc.d
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$POLICY" && chmod 755 "$POLICY"
        trap 'rm -f "$POLICY"' EXIT
    fi
    apt-get install -y --no-install-recommends openssh-server openssh-client >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends openssh-server openssh-client >/dev/null
    }
    have || { echo "sshd: openssh-server installed, but sshd is not there" >&2; exit 1; }
}

case "${1:-}" in
    install) install ;;
    *) echo "usage: sshd.sh install" >&2; exit 2 ;;
esac
