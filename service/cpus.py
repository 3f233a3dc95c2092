"""How many CPUs this process may really use: affinity, and a container's CPU quota.

`os.cpu_count()` and even the affinity mask report the host's cores inside a container that is
limited by a CFS quota (docker --cpus=1.5, a Kubernetes CPU limit): sizing workers by them
starts more CPU-bound workers than the quota can run, and each costs memory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota in CPUs (1.5 for `--cpus=1.5`), or None when there is none.

    cgroup v2 writes "QUOTA PERIOD" (or "max PERIOD") to cpu.max; v1 has cpu.cfs_quota_us
    (-1 without a quota) and cpu.cfs_period_us.
    """
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    quota_text = _read(root / "cpu" / "cpu.cfs_quota_us") or _read(root / "cpu.cfs_quota_us")
    period_text = _read(root / "cpu" / "cpu.cfs_period_us") or _read(root / "cpu.cfs_period_us")
    try:
        quota, period = int(quota_text or "-1"), int(period_text or "0")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Whole CPUs this process can keep busy: the affinity mask, capped by the quota (rounded
    up: a 1.5-CPU quota still runs two workers' bursts)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


def worker_count(environ: dict[str, str] | None = None, root: Path = CGROUP_ROOT) -> int:
    """gunicorn workers: WEB_CONCURRENCY when set, else one per usable CPU, at least two (one
    can be restarted while the other serves)."""
    environ = os.environ if environ is None else environ
    configured = environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        try:
            count = int(configured)
        except ValueError as error:
            raise ValueError(f"WEB_CONCURRENCY={configured!r} is not a whole number") from error
        if count < 1:
            raise ValueError(f"WEB_CONCURRENCY={configured!r} must be at least 1")
        return count
    return max(2, available_cpus(root))
