"""How many scoring processes the machine can give, and how many scoring jobs a worker runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gaia.config import ValidatorSettings
from gaia.tasks.defined_tasks.weather.pipeline.scoring_pool import machine_processes
from gaia.tasks.defined_tasks.weather.pipeline.workers import scoring_limit

GIB_IN_KB = 1024**2


def meminfo(tmp_path: Path, available_gib: float) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       {int(512 * GIB_IN_KB)} kB\n"
                    f"MemFree:        {int(available_gib * GIB_IN_KB / 2)} kB\n"
                    f"MemAvailable:   {int(available_gib * GIB_IN_KB)} kB\n")
    return path


def test_one_process_per_two_gib_of_available_memory_when_memory_is_the_bound(tmp_path):
    assert machine_processes(meminfo(tmp_path, 0.5)) == 1  # never none
    if len(os.sched_getaffinity(0)) > 3:
        assert machine_processes(meminfo(tmp_path, 5.9)) == 2


def test_every_usable_cpu_but_one_when_cpus_are_the_bound(tmp_path):
    cpus = len(os.sched_getaffinity(0))
    assert machine_processes(meminfo(tmp_path, 4096)) == max(1, cpus - 1)


def test_a_meminfo_without_available_memory_is_an_error(tmp_path):
    path = tmp_path / "meminfo"
    path.write_text("MemTotal: 1024 kB\n")
    with pytest.raises(ValueError, match="MemAvailable"):
        machine_processes(path)


def test_unset_means_the_machine_decides_and_a_worker_runs_one_scoring_job_per_process():
    assert ValidatorSettings().scoring_processes is None
    assert ValidatorSettings(scoring_processes=0).scoring_processes == 0
    assert scoring_limit(3).limit == 3
    assert scoring_limit(0).limit == 1  # in the worker itself: one forecast in memory at a time
