"""core.memory: the node's heap gives megabyte blocks back to the system once freed."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHILD = r"""
import threading
from spatial_mllm_ros.core.memory import bound_heap

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

assert bound_heap()
del bytearray(4 << 20)[:]  # one large image came and went (glibc would raise its threshold)
start = rss_mib()
held, kept = [], []
lock = threading.Lock()

def work():
    for _ in range(40):  # images of 0.9 MiB, as a 640x480 rgb8 frame, on several threads
        block = bytearray(b"x" * 921_600)
        small = [bytes(2000) for _ in range(10)]  # small (malloc) objects between them
        with lock:  # the image is dropped later; the small objects stay (as buffers do)
            held.append(block)
            kept.append(small[::5])

threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
peak = rss_mib()
held.clear()
print(f"{start:.1f} {peak:.1f} {rss_mib():.1f}")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc only")
def test_freed_image_sized_blocks_leave_the_process() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    start, peak, after = (float(x) for x in out)
    assert peak - start > 150  # 240 blocks of 0.9 MiB were held at once
    assert after - start < 10, (start, peak, after)  # and given back when freed, although
    # small objects allocated between them are still alive
