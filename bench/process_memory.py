"""Memory of a process as Linux reports it, for the benchmarks and the load test."""

from __future__ import annotations

from pathlib import Path


def proc_status_mb(pid: int | str = "self", field: str = "VmRSS") -> float | None:
    """A memory figure of a process in MiB from ``/proc/<pid>/status`` (``VmRSS`` now, ``VmHWM``
    its peak, resettable unlike ru_maxrss); None where the process or the field is missing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
