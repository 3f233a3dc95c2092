"""Worker count from WEB_CONCURRENCY, the affinity mask and a container's CPU quota."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.cpus import available_cpus, cgroup_cpu_limit, worker_count

AFFINITY = len(os.sched_getaffinity(0))


def _cgroup(tmp_path: Path, **files: str) -> Path:
    for name, content in files.items():
        path = tmp_path / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content + "\n", encoding="ascii")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "150000 100000"}, 1.5),
        ({"cpu.max": "max 100000"}, None),
        ({"cpu.max": "garbage"}, None),
        ({"cpu__cpu.cfs_quota_us": "50000", "cpu__cpu.cfs_period_us": "100000"}, 0.5),
        ({"cpu__cpu.cfs_quota_us": "-1", "cpu__cpu.cfs_period_us": "100000"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_limit_reads_v2_and_v1(tmp_path: Path, files: dict, limit: float | None) -> None:
    assert cgroup_cpu_limit(_cgroup(tmp_path, **files)) == limit


def test_a_quota_caps_the_cpus_and_rounds_up(tmp_path: Path) -> None:
    one_and_a_half = _cgroup(tmp_path, **{"cpu.max": "150000 100000"})
    assert available_cpus(one_and_a_half) == min(AFFINITY, 2)
    tiny = _cgroup(tmp_path / "tiny", **{"cpu.max": "10000 100000"})
    assert available_cpus(tiny) == 1


def test_worker_count_prefers_web_concurrency(tmp_path: Path) -> None:
    quota = _cgroup(tmp_path, **{"cpu.max": "100000 100000"})
    assert worker_count({"WEB_CONCURRENCY": "5"}, quota) == 5
    assert worker_count({}, quota) == 2  # one CPU still runs two workers
    many = _cgroup(tmp_path / "many", **{"cpu.max": "6400000 100000"})
    assert worker_count({}, many) == max(2, AFFINITY)


@pytest.mark.parametrize("value", ["zero", "0", "-2"])
def test_worker_count_refuses_a_bad_web_concurrency(value: str) -> None:
    with pytest.raises(ValueError, match="WEB_CONCURRENCY"):
        worker_count({"WEB_CONCURRENCY": value})
