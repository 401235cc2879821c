#!/usr/bin/env bash
# Kills `lsim index build` and `lsim index append` with SIGKILL at many points and checks,
# after each kill, that the index at the path is whole: `lsim index verify` passes and
# `lsim index dump --all` prints exactly the events of the old index or of the new one
# (or, for a first build, the path is absent). Then it runs the command again on what the
# kill left and checks that the leftovers (DIR.tmp-PID, a dead writer's LMDB lock) neither
# break it nor stay: the rerun gives the new index and no DIR.tmp-* remains.
#
# Three scenarios: a first build (no index at the path), a build --force over an index,
# an append. Two ways of choosing kill points:
#   syscall  the uninterrupted command is traced once (strace -ff); every syscall that can
#            change the disk (write, writev, pwrite64, fsync, fdatasync, ftruncate, mkdir,
#            rename, renameat2, unlink, rmdir, openat of a file that is not a library) is a
#            kill point, plus the very first openat (the start): the command is killed on
#            entering it (strace -e inject=NAME:signal=KILL:when=K), before it runs. The disk
#            only changes at such syscalls (LMDB writes with pwrite/writev, not through a
#            writable map), so this tries every state a kill can leave, exactly.
#   time     SIGKILL from the shell at i/N of the command's measured duration (no ptrace):
#            spreads kills over the CPU-bound parts (parsing, sorting, encoding) too.
# Every kill is classified by what it left: before the commit (nothing new written),
# in the commit (new pages written but not visible) or after it; and by when it landed
# (its fraction of the run).
#
#   tests/fault_kill.sh [KILLS] [--uic]   (default 60: every syscall point, then timed kills up
#                                  to KILLS per command, at least 10 per scenario)
# --uic: every build and append also writes a User Interest Center (a small MIMN checkpoint
# trained here), and the dumps compared include its records (`lsim index dump --all`): a
# kill must leave the old events with the old states, or the new with the new.
# Needs LSIM_BIN (default build/lsim). Without strace (or ptrace), the syscall points are
# skipped and the summary says so. Exits 1 on any failure.
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")/.." && pwd)
lsim=${LSIM_BIN:-$here/build/lsim}
[ -x "$lsim" ] || { echo "fault_kill: $lsim missing: build first (or set LSIM_BIN)" >&2; exit 2; }
kills=60
uic=0
for a in "$@"; do
    case $a in
    --uic) uic=1 ;;
    *) kills=$a ;;
    esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/fault_kill.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
    echo "fault_kill: FAIL: $*" >&2
    failures=$((failures + 1))
}
have_strace=1
command -v strace >/dev/null || have_strace=0
if [ $have_strace = 1 ]; then # present, but can it trace here (ptrace may be forbidden)?
    { strace -qq -o /dev/null -e trace=exit_group -e inject=exit_group:signal=KILL true; } 2>/dev/null
    [ $? = 137 ] || have_strace=0
fi
if [ $have_strace = 0 ]; then
    echo "fault_kill: strace missing or unable to trace: syscall kill points SKIPPED, timed kills only"
fi

# ---- inputs: old.csv, then new.csv (later events of the same users, and 100 new users)
"$lsim" gen log --users 500 --max-len 2000 --out "$work/a.csv" 2>/dev/null || { echo "gen log failed" >&2; exit 1; }
"$lsim" gen log --users 100 --max-len 800 --seed 7 --out "$work/b.csv" 2>/dev/null || exit 1
awk -F, '$5 < 1509000000' "$work/a.csv" > "$work/old.csv"
{ awk -F, '$5 >= 1509000000' "$work/a.csv"; sed 's/^/n/' "$work/b.csv"; } > "$work/new.csv"
: > "$work/empty.csv"
rm -f "$work/a.csv" "$work/b.csv"

# the md5 of an index's canonical dump ("" if dump fails)
dump_sum() {
    local s
    s=$("$lsim" index dump --all --index "$1" 2>/dev/null | md5sum) || { echo ""; return; }
    echo "${s%% *}"
}

uicopt=""
if [ $uic = 1 ]; then # a MIMN checkpoint of a few steps: its states are what the UIC holds
    "$lsim" index build --index "$work/ckpt_ix" --input "$work/old.csv" 2>/dev/null || exit 1
    "$lsim" train --index "$work/ckpt_ix" --model mimn --steps 3 --batch 64 --threads 1 --out "$work/mimn.st" \
        2>/dev/null >&2 || { echo "fault_kill: training the MIMN checkpoint failed" >&2; exit 1; }
    rm -rf "$work/ckpt_ix"
    uicopt="--uic $work/mimn.st"
fi
# shellcheck disable=SC2086
"$lsim" index build --index "$work/ref_old" --input "$work/old.csv" $uicopt 2>/dev/null ||
    { echo "fault_kill: the reference build failed" >&2; exit 1; }
cp -a "$work/ref_old" "$work/ref_app"
# shellcheck disable=SC2086
"$lsim" index append --index "$work/ref_app" --input "$work/new.csv" $uicopt 2>/dev/null || exit 1
# shellcheck disable=SC2086
"$lsim" index build --index "$work/ref_all" --input "$work/old.csv" --input "$work/new.csv" $uicopt 2>/dev/null ||
    exit 1
if [ $uic = 1 ] && [ "$("$lsim" index dump --all --index "$work/ref_app" | grep -c '^uic')" = 0 ]; then
    echo "fault_kill: the reference index has no User Interest Center" >&2
    exit 1
fi
sum_old=$(dump_sum "$work/ref_old")
sum_app=$(dump_sum "$work/ref_app")
sum_all=$(dump_sum "$work/ref_all")
if [ -z "$sum_old" ] || [ "$sum_old" = "$sum_app" ] || [ "$sum_old" = "$sum_all" ]; then
    echo "fault_kill: reference dumps missing or equal" >&2
    exit 1
fi
old_md5=$(md5sum < "$work/ref_old/data.mdb")
old_md5=${old_md5%% *}
rm -rf "$work/ref_app" "$work/ref_all"

ix=$work/run/ix
# scenario -> command arguments (the index path is $ix), old and new dump sums
args_of() {
    case $1 in
    build) echo "index build --index $ix --input $work/old.csv $uicopt" ;;
    force) echo "index build --force --index $ix --input $work/old.csv --input $work/new.csv $uicopt" ;;
    append) echo "index append --index $ix --input $work/new.csv $uicopt" ;;
    esac
}
old_of() { case $1 in build) echo ABSENT ;; *) echo "$sum_old" ;; esac; }
new_of() { case $1 in build) echo "$sum_old" ;; force) echo "$sum_all" ;; append) echo "$sum_app" ;; esac; }
fresh() {
    rm -rf "$work/run"
    mkdir "$work/run"
    [ "$1" = build ] || cp -a "$work/ref_old" "$ix"
}

# What the kill left: sets `outcome` (old / new / absent / BAD) and `phase`.
inspect() {
    local sc=$1 what=$2
    outcome=BAD
    local extra
    extra=$(cd "$work/run" && ls -A | grep -v -x -E 'ix|ix\.tmp-[0-9]+')
    [ -z "$extra" ] || fail "$sc $what: unexpected files beside the index: $extra"
    if [ ! -e "$ix" ]; then
        if [ "$sc" = build ]; then outcome=absent; else fail "$sc $what: the index is gone"; fi
    else
        local v s
        if ! v=$("$lsim" index verify --index "$ix" 2>&1); then
            fail "$sc $what: verify failed: $(echo "$v" | head -3 | tr '\n' ' ')"
        else
            s=$(dump_sum "$ix")
            if [ "$s" = "$(old_of "$sc")" ]; then outcome=old
            elif [ "$s" = "$(new_of "$sc")" ]; then outcome=new
            else fail "$sc $what: the index holds neither the old nor the new events"
            fi
        fi
    fi
    # did the commit start? build: the staging data.mdb got more than LMDB's two meta
    # pages (8192 bytes); append: data.mdb differs from the old one
    local started=0 f
    if [ "$sc" = append ]; then
        f=$(md5sum < "$ix/data.mdb" 2>/dev/null)
        [ "${f%% *}" = "$old_md5" ] || started=1
    else
        for f in "$work"/run/ix.tmp-*/data.mdb; do
            [ -e "$f" ] && [ "$(stat -c %s "$f")" -gt 8192 ] && started=1
        done
    fi
    if [ "$outcome" = new ]; then phase=committed
    elif [ $started = 1 ]; then phase="in-commit"
    else
        phase="before-commit"
    fi
}

# Runs the command again on what the kill left (a first build: build again, or with --force
# over an index the kill left complete; an append that did land: an empty append, which
# still has to take over a dead writer's lock): it must succeed, give the new events and
# clean every DIR.tmp-*.
rerun() {
    local sc=$1 what=$2 a
    case $sc in
    build)
        a=$(args_of build)
        [ -e "$ix" ] && a="index build --force --index $ix --input $work/old.csv $uicopt"
        ;;
    force) a=$(args_of force) ;;
    append)
        a=$(args_of append)
        [ "$outcome" = new ] && a="index append --index $ix --input $work/empty.csv $uicopt"
        ;;
    esac
    local out
    # shellcheck disable=SC2086
    if ! out=$("$lsim" $a 2>&1); then
        fail "$sc $what: the rerun after the kill failed: $(echo "$out" | tail -2 | tr '\n' ' ')"
        return
    fi
    "$lsim" index verify --index "$ix" > /dev/null 2>&1 || fail "$sc $what: verify failed after the rerun"
    [ "$(dump_sum "$ix")" = "$(new_of "$sc")" ] || fail "$sc $what: the rerun did not give the new events"
    local left
    left=$(cd "$work/run" && ls -A | grep -v -x ix)
    [ -z "$left" ] || fail "$sc $what: left after the rerun: $left"
}

# per scenario tallies
declare -A n_runs n_ok n_old n_new n_absent phases lands
record() { # scenario method fraction [finished: the command ended before the kill; checked, not counted]
    local sc=$1 m=$2 frac=$3
    local before=$failures
    inspect "$sc" "$m"
    rerun "$sc" "$m"
    if [ -n "${4:-}" ]; then
        finished[$sc]=$((${finished[$sc]:-0} + 1))
        [ "$outcome" = new ] || fail "$sc $m: the command finished but the index is not the new one"
        return
    fi
    n_runs[$sc]=$((${n_runs[$sc]:-0} + 1))
    [ $failures = "$before" ] && n_ok[$sc]=$((${n_ok[$sc]:-0} + 1))
    case $outcome in
    old) n_old[$sc]=$((${n_old[$sc]:-0} + 1)) ;;
    new) n_new[$sc]=$((${n_new[$sc]:-0} + 1)) ;;
    absent) n_absent[$sc]=$((${n_absent[$sc]:-0} + 1)) ;;
    esac
    phases[$sc,$phase]=$((${phases[$sc,$phase]:-0} + 1))
    local dec
    dec=$(awk -v f="$frac" 'BEGIN { d = int(f * 10); if (d > 9) d = 9; if (d < 0) d = 0; print d }')
    lands[$sc,$dec]=$((${lands[$sc,$dec]:-0} + 1))
}

mut=write,writev,pwrite64,pwritev,pwritev2,fsync,fdatasync,sync_file_range,ftruncate,fallocate,rename,renameat
mut=$mut,renameat2,unlink,unlinkat,rmdir,mkdir,mkdirat,openat,creat,msync,truncate,execve

# The kill points of a scenario: lines "NAME K FRACTION" from one traced uninterrupted run.
syscall_points() {
    local sc=$1
    fresh "$sc"
    rm -rf "$work/tr"
    mkdir "$work/tr"
    # shellcheck disable=SC2046
    strace -ff -ttt -o "$work/tr/t" -e trace=$mut "$lsim" $(args_of "$sc") > /dev/null 2>&1 || {
        fail "$sc: the traced reference run failed"
        return
    }
    local main="" f
    for f in "$work"/tr/t.*; do grep -q 'execve(' "$f" && main=$f; done
    [ -n "$main" ] || { fail "$sc: no main thread in the trace"; return; }
    for f in "$work"/tr/t.*; do # the kill points count the main thread's calls: no other may write
        [ "$f" = "$main" ] && continue
        grep -v -E '^[0-9.]+ (\+\+\+|---)' "$f" | grep -v -E ' openat\(.*O_RDONLY' | grep -q . &&
            fail "$sc: a thread other than the main one changes the disk: $(head -2 "$f")"
    done
    awk '
        { t[NR] = $1 }
        $2 ~ /^[a-z0-9_]+\(/ {
            name = $2; sub(/\(.*/, "", name)
            k[name]++
            keep = name != "execve"
            if (name == "openat") keep = k[name] == 1 || $0 !~ /openat\(AT_FDCWD, "\/(lib|usr|etc|proc|sys|dev)/
            if (keep) { n++; pn[n] = name; pk[n] = k[name]; pt[n] = $1 }
        }
        END { for (i = 1; i <= n; i++) printf "%s %d %.4f\n", pn[i], pk[i], (pt[i] - t[1]) / (t[NR] - t[1]) }
    ' "$main"
}

run_syscall_points() {
    local sc=$1 name k frac rc
    syscall_points "$sc" > "$work/points"
    while read -r name k frac; do
        fresh "$sc"
        # shellcheck disable=SC2046
        { strace -qq -o /dev/null -e trace="$name" -e inject="$name:signal=KILL:when=$k" \
            "$lsim" $(args_of "$sc") > /dev/null 2>&1; } 2>/dev/null # no "Killed" from bash
        rc=$?
        [ $rc = 137 ] || fail "$sc: kill point $name#$k not reached (exit $rc)"
        record "$sc" "syscall $name#$k" "$frac"
        sys_points="$sys_points $sc:$name#$k=$outcome"
    done < "$work/points"
}

# the fastest of 3 uninterrupted runs, in seconds (a busy machine only makes runs longer)
duration() {
    local sc=$1 i t0 t1 ts=()
    for i in 1 2 3; do
        fresh "$sc"
        t0=$EPOCHREALTIME
        # shellcheck disable=SC2046
        "$lsim" $(args_of "$sc") > /dev/null 2>&1 || fail "$sc: an uninterrupted run failed"
        t1=$EPOCHREALTIME
        ts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
    done
    printf "%s\n" "${ts[@]}" | sort -g | sed -n 1p
}

run_time_points() {
    local sc=$1 n=$2 d i t0 t1 pid rc frac at
    d=$(duration "$sc")
    durations="$durations $sc=${d}s"
    for ((i = 0; i < n; i++)); do
        at=$(awk -v d="$d" -v i="$i" -v n="$n" 'BEGIN { printf "%.4f", d * (i + 0.5) / n }')
        for _ in 1 2 3; do # a run faster than the reference may end first: try a little earlier
            fresh "$sc"
            t0=$EPOCHREALTIME
            # shellcheck disable=SC2046
            "$lsim" $(args_of "$sc") > /dev/null 2>&1 &
            pid=$!
            sleep "$at"
            kill -KILL $pid 2>/dev/null
            t1=$EPOCHREALTIME
            { wait $pid; } 2>/dev/null
            rc=$?
            frac=$(awk -v a="$t0" -v b="$t1" -v d="$d" 'BEGIN { printf "%.4f", (b - a) / d }')
            if [ $rc = 137 ]; then
                record "$sc" "time $frac" "$frac"
                break
            elif [ $rc = 0 ]; then
                record "$sc" "time $frac (finished first)" 1 finished # checked, not counted as a kill
                at=$(awk -v a="$at" 'BEGIN { printf "%.4f", a * 0.8 }')
            else
                fail "$sc: exit $rc when killed at $frac of the run"
                break
            fi
        done
    done
}

declare -A finished
sys_points=""
durations=""
t_start=$SECONDS
for sc in build force append; do
    [ $have_strace = 1 ] && run_syscall_points $sc
    # timed kills fill each command up to $kills (build: half per scenario), at least 10 per scenario
    want=$kills
    [ $sc = append ] || want=$((kills / 2))
    n=$((want - ${n_runs[$sc]:-0}))
    [ $n -ge 10 ] || n=10
    run_time_points $sc $n
done

# ---- leftovers of killed builds beside an index are removed by the next append, and a live
# build's staging directory is not (it holds an flock on it)
leftovers() {
    local at=$1 want=$2
    fresh force
    # shellcheck disable=SC2046
    { strace -qq -o /dev/null -e trace="${at%#*}" -e inject="${at%#*}:signal=KILL:when=${at#*#}" \
        "$lsim" $(args_of force) > /dev/null 2>&1; } 2>/dev/null
    local n
    n=$(cd "$work/run" && ls -d ix.tmp-* 2>/dev/null | wc -l)
    [ "$n" = 1 ] || { fail "leftovers: a build --force killed at $at left $n staging directories, not 1"; return; }
    # shellcheck disable=SC2086
    "$lsim" index append --index "$ix" --input "$work/empty.csv" $uicopt > /dev/null 2>&1 ||
        fail "leftovers: the append after a build killed at $at failed"
    n=$(cd "$work/run" && ls -d ix.tmp-* 2>/dev/null | wc -l)
    [ "$n" = 0 ] || fail "leftovers: the append after a build killed at $at left the staging directory"
    [ "$(dump_sum "$ix")" = "$want" ] || fail "leftovers: the index after a build killed at $at is wrong"
    leftover_checks=$((leftover_checks + 1))
}
leftover_checks=0
if [ $have_strace = 1 ]; then
    leftovers fdatasync#1 "$sum_old" # the new index, written, not yet moved
    leftovers unlink#1 "$sum_all"    # after the exchange: the old index, not yet removed
    # a build held in its commit (fdatasync delayed 3 s) while an append runs beside it
    fresh force
    # shellcheck disable=SC2046
    strace -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:delay_enter=3s \
        "$lsim" $(args_of force) > /dev/null 2> "$work/slow.err" &
    slow=$!
    for _ in $(seq 50); do ls -d "$work"/run/ix.tmp-* > /dev/null 2>&1 && break; sleep 0.1; done
    sleep 1
    # shellcheck disable=SC2086
    "$lsim" index append --index "$ix" --input "$work/empty.csv" $uicopt > /dev/null 2>&1 ||
        fail "leftovers: an append beside a running build failed"
    ls -d "$work"/run/ix.tmp-* > /dev/null 2>&1 || fail "leftovers: an append removed a running build's directory"
    wait $slow || fail "leftovers: the build beside the append failed: $(cat "$work/slow.err")"
    [ "$(dump_sum "$ix")" = "$sum_all" ] || fail "leftovers: the build beside the append gave a wrong index"
    leftover_checks=$((leftover_checks + 1))
fi

# ---- report
echo "fault_kill: syscall points (scenario:syscall#K=outcome):$sys_points"
echo "fault_kill: reference durations:$durations"
for sc in build force append; do
    p="" l=""
    for ph in before-commit in-commit committed; do p="$p $ph ${phases[$sc,$ph]:-0},"; done
    for d in 0 1 2 3 4 5 6 7 8 9; do l="$l ${lands[$sc,$d]:-0}"; done
    echo "fault_kill: $sc: ${n_ok[$sc]:-0}/${n_runs[$sc]:-0} survived; old ${n_old[$sc]:-0}," \
        "new ${n_new[$sc]:-0}, absent ${n_absent[$sc]:-0}; phases:${p%,}; landed per tenth of the run:$l;" \
        "timed runs that ended before the kill (checked, retried earlier) ${finished[$sc]:-0}"
done
method="syscall points + time points"
[ $have_strace = 1 ] || method="time points only (no strace)"
b_runs=$((${n_runs[build]:-0} + ${n_runs[force]:-0}))
b_ok=$((${n_ok[build]:-0} + ${n_ok[force]:-0}))
echo "fault_kill: $([ $uic = 1 ] && echo "with a User Interest Center: ")build $b_ok/$b_runs survived (old ${n_old[force]:-0}," \
    "new $((${n_new[build]:-0} + ${n_new[force]:-0})), absent ${n_absent[build]:-0})," \
    "append ${n_ok[append]:-0}/${n_runs[append]:-0} survived (old ${n_old[append]:-0}, new ${n_new[append]:-0});" \
    "$method; leftover checks $leftover_checks; $((SECONDS - t_start)) s"
if [ "$b_runs" -lt "$kills" ] || [ "${n_runs[append]:-0}" -lt "$kills" ]; then
    fail "fewer than $kills kills per command"
fi
if [ $failures -gt 0 ]; then
    echo "fault_kill: $failures failures" >&2
    exit 1
fi
