"""Fitting a .npy file keeps anonymous memory at O(batch + centers), not O(data)."""
import json
import os
import subprocess
import sys

import pytest

from reference import write_normal_npy

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="RssAnon is read from Linux's /proc")

SCRIPT = r"""
import json, sys
import numpy as np
from kmaot import KMeans
from kmaot._memory import PeakAnon
path, batch = sys.argv[1], int(sys.argv[2])
np.ones(1)  # numpy's own start-up allocations happen before the baseline
with PeakAnon(interval=0.002) as mem:
    km = KMeans(8, random_state=0, batch_size=batch, max_iter=5, n_threads=2).fit(path)
print(json.dumps({"start": mem.start, "peak": mem.peak, "n_iter": km.n_iter_}))
"""


@pytest.mark.slow
def test_file_fit_memory_is_independent_of_file_size(tmp_path):
    n, d = 3_000_000, 32  # 366 MiB of float32
    path = tmp_path / "big.npy"
    write_normal_npy(path, n, d)
    batch = 4096
    res = subprocess.run(cwd="/", args=[sys.executable, "-c", SCRIPT, str(path), str(batch)],
                         capture_output=True, text=True, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    grown = r["peak"] - r["start"]
    file_bytes = n * d * 4
    # a batch is 512 KiB; reduction blocks, prefetch and scratch a few MiB more
    assert grown < 48 * 2**20, f"anonymous memory grew by {grown / 2**20:.1f} MiB"
    assert grown < file_bytes / 8
