#!/usr/bin/env bash
# Starts this project's long CPU queue on this machine, or resumes it, from a home outside the work tree:
#
#   bash experiments/longrun.sh [HOME]        (HOME: ~/longdiv-run unless given)
#   bash experiments/longrun.sh --status [HOME]
#
# --status starts nothing: it says where HOME's queue stands (its CPU and this one's, whether it runs, the line it
# is on, its last progress line, and each run's newest checkpoint), what to look at first in a new session.
# On a machine that has no HOME yet, it clones this checkout's last commit into HOME/code (a pinned copy: changing
# the checkout does not change a run in progress), sets it up (make setup), copies experiments/queue-cpu.txt to
# HOME/queue and writes HOME/MACHINE (the CPU, and when). Then, and on every later call, it starts
# experiments/queue.sh on HOME/queue in the background (log: HOME/log, runner's pid: HOME/pid), with tcmalloc
# preloaded where it is installed (docs/speed.md). Each line names its runs folder (LONGDIV_RUNS; queue-cpu.txt's
# is ~/longdiv-run/runs) and resumes where it stopped, so after the process or the session ends the same call goes
# on. A queue that is still running is left as it is, in one line. A HOME whose MACHINE names another CPU is used as
# it is, with a warning: checkpoints resume on any machine, with the numbers of the machine they run on.
set -euo pipefail
status=false
if [[ "${1:-}" == "--status" ]]; then
    status=true
    shift
fi
home=$(realpath -m "${1:-$HOME/longdiv-run}")
repo=$(cd "$(dirname "$0")/.." && pwd)
# This CPU as run records name it (longdiv.hardware.cpu: one cloud name can cover two kinds of CPU), and the
# tcmalloc library to preload, found as benchmarks/allocator.py finds it: two lines, from the home's own venv.
probe() {
    (cd "$home/code" && .venv/bin/python -c 'import ctypes.util
from longdiv import hardware
m = hardware.cpu()
print(f"{m.model}, {m.cpu_id}")
print(ctypes.util.find_library("tcmalloc_minimal") or "")') 2>/dev/null || echo "?"
}
if $status; then
    [[ -d "$home" ]] || { echo "no long-run home at $home (this machine is new to it): run without --status"; exit 0; }
    echo "home: $home, set up on: $(cat "$home/MACHINE" 2>/dev/null || echo '?'); this CPU: $(probe | head -1)"
    if flock -n "$home/queue.lock" true 2>/dev/null; then echo "queue: not running"; else echo "queue: running"; fi
    grep -a '^== ' "$home/log" 2>/dev/null | tail -1 || true
    grep -a '^step ' "$home/log" 2>/dev/null | tail -1 || true
    find "$home/runs" -name last.ckpt -printf '%TF %TH:%TM  %p\n' 2>/dev/null | sort | tail -5 || true
    exit 0
fi
mkdir -p "$home"
if [[ ! -d "$home/code" ]]; then
    git clone -q "$repo" "$home/code"
    echo "cloned $(git -C "$home/code" log --oneline -1) into $home/code"
fi
[[ -x "$home/code/.venv/bin/python" ]] || make -C "$home/code" setup
[[ -e "$home/queue" ]] || cp "$home/code/experiments/queue-cpu.txt" "$home/queue"
{ read -r cpu; read -r tcmalloc || true; } < <(probe)
if [[ ! -e "$home/MACHINE" ]]; then
    echo "$cpu; set up $(date -u +%FT%TZ)" > "$home/MACHINE"
elif ! grep -qF -- "$cpu" "$home/MACHINE"; then
    echo "warning: $home was set up on another CPU ($(cat "$home/MACHINE")); this one is $cpu" >&2
fi
if ! flock -n "$home/queue.lock" true 2>/dev/null; then
    echo "queue $home/queue is already running (log: $home/log)"
    exit 0
fi
[[ -n "$tcmalloc" ]] || echo "note: no tcmalloc here; the fits run faster under it (Debian: apt-get install" \
    "libtcmalloc-minimal4 before the queue starts; docs/speed.md)" >&2
LD_PRELOAD=${tcmalloc:-${LD_PRELOAD:-}} nohup bash "$home/code/experiments/queue.sh" "$home/queue" \
    >> "$home/log" 2>&1 < /dev/null &
echo $! > "$home/pid"
echo "queue $home/queue started (pid $!, log $home/log, ${tcmalloc:+tcmalloc, }code at" \
    "$(git -C "$home/code" log --oneline -1 | cut -c1-7))"
