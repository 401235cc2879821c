#!/usr/bin/env bash
# A full disk under `lsim index build` and `lsim index append`: each must fail with exit 1
# and an error naming the index and "no space", leave the old index whole (verify passes,
# `lsim index dump --all` unchanged), leave no staging directory and give back the disk it
# took (the free space after the failure is what it was before), and the same command must
# succeed once there is room again.
#
# The full disk is a small tmpfs, mounted in a private mount namespace (unshare -m as root,
# unshare -rm as a user with user namespaces) so that nothing stays mounted if the test
# dies; where neither works, a file size limit (ulimit -f, SIGXFSZ ignored) stands in for
# it. The first line of output says which method ran.
#   tests/fault_disk.sh            (needs LSIM_BIN, default build/lsim)
#   FAULT_DISK_METHOD=fsize tests/fault_disk.sh    forces the file size limit
set -uo pipefail
export LC_ALL=C
here=$(cd "$(dirname "$0")/.." && pwd)
lsim=${LSIM_BIN:-$here/build/lsim}
[ -x "$lsim" ] || { echo "fault_disk: $lsim missing: build first (or set LSIM_BIN)" >&2; exit 2; }
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

if [ "${1:-}" != --inner ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/fault_disk.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    if [ "${FAULT_DISK_METHOD:-}" != fsize ]; then
        for how in "unshare -m --propagation private" "unshare -rm --propagation private"; do
            # shellcheck disable=SC2086
            if $how sh -c "mount -t tmpfs -o size=64k tmpfs '$work'" 2>/dev/null; then
                # shellcheck disable=SC2086
                $how bash "$self" --inner tmpfs "$work" "$how"
                exit $?
            fi
        done
    fi
    bash "$self" --inner fsize "$work" ""
    exit $?
fi
method=$2
work=$3
how=$4
failures=0
checks=0
fail() {
    echo "fault_disk: FAIL: $*" >&2
    failures=$((failures + 1))
}

fs=$work/fs
if [ "$method" = tmpfs ]; then
    mkdir -p "$fs" && mount -t tmpfs -o size=8m tmpfs "$fs" || { echo "fault_disk: mount failed" >&2; exit 1; }
    echo "fault_disk: method: an 8 MiB tmpfs in a private mount namespace ($how)"
else
    mkdir -p "$fs"
    echo "fault_disk: method: a file size limit (ulimit -f, SIGXFSZ ignored): no tmpfs could be mounted here"
fi

"$lsim" gen log --users 60 --max-len 2000 --out "$work/small.csv" 2>/dev/null || exit 1
awk -F, '$5 < 1509000000' "$work/small.csv" > "$work/old.csv"
awk -F, '$5 >= 1509000000' "$work/small.csv" > "$work/new.csv"
"$lsim" gen log --users 400 --max-len 3000 --seed 3 --out "$work/big.csv" 2>/dev/null || exit 1
sed -i 's/^/b/' "$work/big.csv" # users of their own

dump_sum() {
    local s
    s=$("$lsim" index dump --all --index "$1" 2>/dev/null | md5sum) || { echo ""; return; }
    echo "${s%% *}"
}
free_bytes() { stat -f -c '%f %S' "$fs" | awk '{ print $1 * $2 }'; }

ix=$fs/ix
"$lsim" index build --index "$ix" --input "$work/old.csv" 2>/dev/null ||
    { echo "fault_disk: the first build failed" >&2; exit 1; }
sum_old=$(dump_sum "$ix")
size_old=$(stat -c %s "$ix/data.mdb")

# Leaves `room` bytes free: a filler file on the tmpfs, or a file size limit `room` bytes
# above the old index's data.mdb (the index files are the only ones written).
fill() {
    local room=$1
    rm -f "$fs/filler"
    if [ "$method" = tmpfs ]; then
        local f
        f=$(free_bytes)
        [ "$f" -gt "$room" ] && head -c $((f - room)) /dev/zero > "$fs/filler" 2>/dev/null
        limit=unlimited
    else
        limit=$(((size_old + room) / 1024))
    fi
}

# run "what" "must name" lsim args...: must exit 1 with "no space" and the path in its error
run_full() {
    local what=$1 name=$2
    shift 2
    local before after rc
    before=$(free_bytes)
    (
        trap '' XFSZ
        ulimit -f "$limit"
        exec "$lsim" "$@"
    ) > /dev/null 2> "$work/err"
    rc=$?
    after=$(free_bytes)
    checks=$((checks + 1))
    echo "fault_disk: $what: exit $rc: $(tr '\n' ' ' < "$work/err")"
    [ $rc = 1 ] || fail "$what: exit $rc, not 1"
    grep -q -i "no space" "$work/err" || fail "$what: the error does not say 'no space'"
    grep -q -F "$name" "$work/err" || fail "$what: the error does not name $name"
    # the index as it was
    "$lsim" index verify --index "$ix" > /dev/null 2>&1 || fail "$what: verify fails on the old index after it"
    [ "$(dump_sum "$ix")" = "$sum_old" ] || fail "$what: the old index's events changed"
    local size
    size=$(stat -c %s "$ix/data.mdb")
    [ "$size" = "$size_old" ] || fail "$what: data.mdb is $size bytes, was $size_old"
    # no junk: no staging directory, the disk given back
    local junk
    junk=$(cd "$fs" && ls -A | grep -v -x -E 'ix|filler')
    [ -z "$junk" ] || fail "$what: left behind: $junk"
    [ "$method" != tmpfs ] || [ "$after" = "$before" ] || fail "$what: $before bytes free before, $after after"
}

for room in 262144 0; do
    fill $room
    label="$room bytes free"
    [ "$method" = tmpfs ] || label="file size limit $room bytes above the index"
    run_full "build, $label" "$fs/new" index build --index "$fs/new" --input "$work/big.csv"
    run_full "build --force, $label" "$ix" index build --force --index "$ix" --input "$work/big.csv"
    run_full "append, $label" "$ix" index append --index "$ix" --input "$work/big.csv"
    run_full "append again, $label" "$ix" index append --index "$ix" --input "$work/big.csv"
done

# room again: the same commands succeed
rm -f "$fs/filler"
limit=unlimited
"$lsim" index append --index "$ix" --input "$work/new.csv" 2>/dev/null || fail "the append with room failed"
"$lsim" index verify --index "$ix" > /dev/null 2>&1 || fail "verify fails after the append with room"
"$lsim" index build --index "$work/ref" --input "$work/old.csv" 2>/dev/null &&
    "$lsim" index append --index "$work/ref" --input "$work/new.csv" 2>/dev/null || fail "reference build failed"
[ "$(dump_sum "$ix")" = "$(dump_sum "$work/ref")" ] || fail "the append with room gave other events than on a free disk"
"$lsim" index build --index "$fs/new" --input "$work/big.csv" 2>/dev/null || fail "the build with room failed"
"$lsim" index verify --index "$fs/new" > /dev/null 2>&1 || fail "verify fails after the build with room"
checks=$((checks + 1))

[ "$method" = tmpfs ] && umount "$fs"
if [ $failures -gt 0 ]; then
    echo "fault_disk: $failures failures in $checks checks ($method)" >&2
    exit 1
fi
echo "fault_disk: $checks/$checks passed ($method): build, build --force and append on a full disk fail with" \
    "exit 1 and 'no space' naming the index, the old index unchanged, no junk left; with room again they succeed"
