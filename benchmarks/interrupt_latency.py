"""Seconds from SIGINT (Ctrl-C) to the exit of a process fitting on worker threads.

    python benchmarks/interrupt_latency.py --trials 10

Each trial starts a child that fits a 300,000 x 16 float32 .npy file (or the same data in
memory) in a loop with a checkpoint, sends SIGINT at a random moment after the first
Lloyd iterations, and times until the child has exited (KeyboardInterrupt traceback
printed, thread pool and prefetch thread gone).  Prints every latency and the maximum.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = r"""
import json, sys
import numpy as np
from kmaot import KMeans
data, ck, n_threads, in_memory = json.loads(sys.argv[1])
if in_memory:
    data = np.load(data)
km = KMeans(12, random_state=0, tol=0, max_iter=25, n_threads=n_threads, batch_size=20000,
            verbose=1)
while True:
    km.fit(data, checkpoint=ck, checkpoint_every=1)
"""


def trial(tmp, path, n_threads, in_memory, delay):
    ck = os.path.join(tmp, "ck.npz")
    proc = subprocess.Popen([sys.executable, "-c", CHILD,
                             json.dumps([path, ck, n_threads, in_memory])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp)
    for line in proc.stdout:
        if line.startswith("Iteration 1,"):
            break
    time.sleep(delay)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    dt = time.perf_counter() - t0
    err = proc.stderr.read().strip().splitlines()
    leftovers = [f for f in os.listdir(tmp) if f.endswith(".tmp")]
    if os.path.exists(ck):
        os.remove(ck)
    return dt, proc.returncode, err[-1] if err else "", leftovers


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kmaot-int-") as tmp:
        path = os.path.join(tmp, "X.npy")
        np.save(path, np.random.default_rng(0).standard_normal((300_000, 16)).astype(np.float32))
        worst = 0.0
        for i in range(args.trials):
            n_threads, in_memory = rnd.choice([(2, False), (1, False), (2, True)])
            dt, rc, last, left = trial(tmp, path, n_threads, in_memory, rnd.uniform(0, 0.5))
            worst = max(worst, dt)
            print(f"trial {i}: n_threads={n_threads} in_memory={in_memory}: {dt:.3f} s, "
                  f"exit code {rc}, last stderr line {last!r}, temporary files left {left}")
        print(f"max SIGINT -> exit latency over {args.trials} trials: {worst:.3f} s")


if __name__ == "__main__":
    main()
