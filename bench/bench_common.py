"""bench_common.py: helpers the bench/ scripts share."""
import os
import subprocess
import sys


def run(cmd, env=None):
    """Runs cmd; its stdout, or the script exits with the command and its stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return p.stdout


def tools(build, *names):
    """The paths of build/NAME for each name; the script exits if one is missing."""
    paths = [os.path.join(build, n) for n in names]
    for x in paths:
        if not os.access(x, os.X_OK):
            sys.exit(f"{x} is missing: build first (scripts/build.sh)")
    return paths


def request_data(lsim, work, users, kinds, gen=""):
    """The engine benches' data in work: `lsim gen log --users U` (user 1 at 54,000
    behaviors; gen: more `lsim gen log` options, one string), its index, and for each
    model kind a checkpoint of 200 training steps (trained weights, not good ones).
    Made once per work directory; returns (index dir, {kind: checkpoint})."""
    os.makedirs(work, exist_ok=True)
    log, idx = os.path.join(work, "log.csv"), os.path.join(work, "idx")
    if not os.path.exists(os.path.join(idx, "data.mdb")):
        run([lsim, "gen", "log", "--users", str(users), "--seed", "1", "--out", log] + gen.split())
        run([lsim, "index", "build", "--index", idx, "--input", log, "--force"])
    ckpts = {}
    for kind in kinds:
        ckpts[kind] = os.path.join(work, kind + ".safetensors")
        if not os.path.exists(ckpts[kind]):
            run([lsim, "train", "--index", idx, "--model", kind, "--out", ckpts[kind], "--steps", "200",
                 "--threads", "2", "--test-from", str(1512345600 - 86400)])  # the log's last day is the test set
    return idx, ckpts
