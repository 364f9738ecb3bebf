#!/usr/bin/env bash
# Runs a queue of long jobs one after another on one machine (two runs at once on 2 cores gain little over one).
#
#   nohup bash experiments/queue.sh QUEUE >> LOG 2>&1 &
#
# QUEUE holds one command per line, run from the repository root (blank lines and # comments are skipped). A
# command that ends with status 0 is written to QUEUE.done and skipped from then on; one that fails stops the queue
# with its status. Every experiment resumes where it stopped, so after the process or the session ends the same line
# starts it again and it goes on: run the queue again. Lines may be added or reordered while it runs; it reads the
# file again before each one.
set -uo pipefail
queue=$(realpath "$1")
done_file="$queue.done"
touch "$done_file"
# One runner per queue: a second would start the same line again, two fits writing one run folder. The lock is held
# by the commands too (they inherit it), so a runner killed while its line still runs keeps the queue locked.
exec 9>>"$queue.lock"
if ! flock -n 9; then
    echo "error: queue $queue is already running (a process holds $queue.lock); wait for it or end it" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
while true; do
    next=""
    while IFS= read -r line; do
        [[ -z "${line// }" || "$line" =~ ^[[:space:]]*# ]] && continue
        grep -qxF -- "$line" "$done_file" || { next="$line"; break; }
    done < "$queue"
    if [[ -z "$next" ]]; then
        echo "== queue $queue: every line done $(date -u +%FT%TZ)"
        exit 0
    fi
    echo "== start $(date -u +%FT%TZ) on$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), pid $$: $next"
    bash -c "$next"
    status=$?
    if [[ $status -ne 0 ]]; then
        echo "== stopped $(date -u +%FT%TZ): status $status from: $next"
        exit "$status"
    fi
    echo "$next" >> "$done_file"
    echo "== done $(date -u +%FT%TZ): $next"
done
