#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (for CI and for trying `launcher=submitit_slurm` locally).
#
#   scripts/slurm_local.sh up     # start munged, slurmctld and slurmd; wait until the node is idle
#   scripts/slurm_local.sh down   # cancel the jobs, stop exactly the daemons `up` started (safe to repeat)
#
# Needs Slurm and MUNGE installed (Debian: apt-get install -y slurm-wlm munge) and root (slurmd runs jobs as
# their user). Everything lives in $SLURM_LOCAL_DIR (default /tmp/unlearnbench-slurm): key, slurm.conf,
# state, spool, logs, pid files. Clients find the cluster with SLURM_CONF=$SLURM_LOCAL_DIR/slurm.conf;
# `up` prints that line. The partition is `debug`. SLURM_LOCAL_TIMEOUT (default 60 s) bounds the wait.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/unlearnbench-slurm}
CONF=$DIR/slurm.conf
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
PARTITION=debug
# daemon name -> pid file (the daemons write them; `down` reads them)
DAEMONS=(slurmd slurmctld munged)

die() { echo "slurm_local: $*" >&2; exit 1; }

pidfile() { echo "$DIR/$1.pid"; }

# The pid in $1's pid file, if that process is alive and is $1 (not a recycled pid).
running_pid() {
  local file pid
  file=$(pidfile "$1")
  [ -s "$file" ] || return 1
  pid=$(cat "$file")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

node_state() { SLURM_CONF=$CONF sinfo -h -N -p "$PARTITION" -o %t 2>/dev/null | head -n 1; }

wait_idle() {
  local state="" deadline=$((SECONDS + TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    state=$(node_state || true)
    [ "$state" = idle ] && return 0
    sleep 1
  done
  stop
  die "node not idle after ${TIMEOUT}s (state: ${state:-no answer from slurmctld}); logs: $DIR/log/"
}

write_conf() {
  local host node
  host=$(hostname -s)
  # This machine's CPUs, sockets, cores, threads and memory, as slurmd itself sees them.
  node=$(slurmd -C | head -n 1)
  [[ $node == NodeName=*RealMemory=* ]] || die "could not read this node's hardware from 'slurmd -C'"
  cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a one-node cluster, this host as node and controller.
ClusterName=unlearnbench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$(pidfile slurmctld)
SlurmdPidFile=$(pidfile slurmd)
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  for cmd in munged slurmctld slurmd sinfo sbatch; do
    command -v "$cmd" >/dev/null || die "$cmd not found; install Slurm and MUNGE (apt-get install -y slurm-wlm munge)"
  done
  [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their owner)"
  if running_pid slurmctld >/dev/null && running_pid slurmd >/dev/null && running_pid munged >/dev/null; then
    echo "slurm_local: already up ($DIR)"
    wait_idle
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  stop  # a half-started cluster from an earlier run
  rm -rf "$DIR"
  mkdir -p "$DIR"/{munge,state,spool,log}
  chmod 700 "$DIR" "$DIR/munge"
  head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
  chmod 400 "$DIR/munge/munge.key"
  munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" --pid-file="$(pidfile munged)" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" --force \
    || die "munged did not start; see $DIR/log/munged.log"
  write_conf
  slurmctld -f "$CONF" || { stop; die "slurmctld did not start; see $DIR/log/slurmctld.log"; }
  slurmd -f "$CONF" || { stop; die "slurmd did not start; see $DIR/log/slurmd.log"; }
  wait_idle
  echo "slurm_local: up, partition '$PARTITION' on $(hostname -s) ($DIR)"
  echo "export SLURM_CONF=$CONF"
}

# Stop one daemon by its pid file: TERM, then KILL after 10 s.
stop_daemon() {
  local pid
  pid=$(running_pid "$1") || { rm -f "$(pidfile "$1")"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    [ -d "/proc/$pid" ] || break
    sleep 0.5
  done
  if [ -d "/proc/$pid" ]; then
    kill -9 "$pid" 2>/dev/null || true
    echo "slurm_local: $1 (pid $pid) did not stop on TERM; killed" >&2
  fi
  rm -f "$(pidfile "$1")"
}

stop() {
  # Cancel jobs first so that no job step outlives slurmd.
  if running_pid slurmctld >/dev/null; then
    SLURM_CONF=$CONF scancel --partition="$PARTITION" 2>/dev/null || true
    for _ in $(seq 1 20); do
      [ -z "$(SLURM_CONF=$CONF squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  for daemon in "${DAEMONS[@]}"; do
    stop_daemon "$daemon"
  done
}

case "${1:-}" in
  up) start ;;
  down) stop; echo "slurm_local: down" ;;
  *) die "usage: $0 up|down" ;;
esac
