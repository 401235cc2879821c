"""bench_common.py: helpers the bench/ scripts share."""
import subprocess
import sys


def run(cmd, env=None):
    """Runs cmd; its stdout, or the script exits with the command and its stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    return p.stdout
