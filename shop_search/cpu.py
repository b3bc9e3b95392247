"""How many torch threads each process that runs the image model should use (no Django here:
gunicorn.conf.py reads it too).

torch uses every core in every process by default. With N processes on C cores that is N x C busy
threads fighting for C cores: each search is slower and the latency tail grows (docs/benchmarks.md,
"Load"). The cores are shared out instead: C // N threads each, at least one.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (a container's or taskset's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def torch_threads_per_process(processes: int, cores: int | None = None) -> int:
    """Threads for each of ``processes`` processes running the model on one machine's ``cores``."""
    return max(1, (cores or usable_cores()) // max(1, processes))
