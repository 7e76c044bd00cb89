#!/usr/bin/env bash
# A one-node Slurm cluster for the Slurm tests, without systemd (docs: README "make test-cluster").
#   tests/cluster/slurm.sh start DIR   install the packages if missing (root, apt), start munged,
#                                      slurmctld and slurmd with all state in DIR; writes DIR/env
#                                      (`export SLURM_CONF=...`) and waits until the node is idle
#   tests/cluster/slurm.sh stop DIR    stop every daemon it started (by their pid files)
set -euo pipefail

cmd=${1:?usage: slurm.sh start|stop DIR}
P=${2:?usage: slurm.sh start|stop DIR}

install() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1 || {
        apt-get update >/dev/null
        apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    install
    mkdir -p "$P"/{munge,run,state/ctld,state/d,log}
    chmod 700 "$P/munge"; chmod 755 "$P/run" "$P"
    [ -f "$P/munge/munge.key" ] || mungekey --create --keyfile="$P/munge/munge.key" >/dev/null
    munged --key-file="$P/munge/munge.key" --socket="$P/run/munge.socket.2" \
        --pid-file="$P/run/munged.pid" --log-file="$P/munge/munged.log" --seed-file="$P/munge/munged.seed"
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
    cat > "$P/slurm.conf" <<CONF
ClusterName=runctl-test
SlurmctldHost=$host
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$P/run/munge.socket.2
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
StateSaveLocation=$P/state/ctld
SlurmdSpoolDir=$P/state/d
SlurmctldPidFile=$P/run/slurmctld.pid
SlurmdPidFile=$P/run/slurmd.pid
SlurmctldLogFile=$P/log/slurmctld.log
SlurmdLogFile=$P/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$P/state/jobcomp.txt
ReturnToService=2
MinJobAge=300
KillWait=10
MailProg=/bin/true
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$P/slurm.conf"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    echo "export SLURM_CONF=$SLURM_CONF" > "$P/env"
    for _ in $(seq 1 100); do
        if [ "$(sinfo -h -o %t 2>/dev/null | head -1)" = "idle" ]; then
            echo "slurm: one-node cluster up (SLURM_CONF=$SLURM_CONF)"
            return 0
        fi
        sleep 0.1
    done
    echo "slurm: the node did not become idle; logs in $P/log" >&2
    return 1
}

stop() {
    # every job first (their steps would outlive slurmd), then the daemons; SIGKILL what is left
    if [ -f "$P/slurm.conf" ] && command -v scancel >/dev/null; then
        SLURM_CONF="$P/slurm.conf" scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 1 100); do
            [ -z "$(SLURM_CONF="$P/slurm.conf" squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
    local pids="" steps=""
    for d in slurmd slurmctld munged; do
        [ -f "$P/run/$d.pid" ] && pids="$pids $(cat "$P/run/$d.pid")"
    done
    [ -f "$P/run/slurmd.pid" ] && steps=$(pgrep -P "$(cat "$P/run/slurmd.pid")" 2>/dev/null || true)
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        alive=0
        for pid in $pids $steps; do
            if kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]; then
                alive=1
            fi
        done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
    for pid in $pids $steps; do kill -KILL "$pid" 2>/dev/null || true; done
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: slurm.sh start|stop DIR" >&2; exit 2 ;;
esac
