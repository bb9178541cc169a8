"""The example in ``gaia.jobs``' docstring runs as written, on a real PostgreSQL."""

from __future__ import annotations

import logging
import textwrap

from pydantic import BaseModel
from sqlalchemy import select

import gaia.jobs
from gaia.jobs import JobStatus, ValidatorJob

RUN_FOREVER = "await worker.run()"


def example_source() -> str:
    """The code block of the docstring, as the body of ``async def example()``."""
    doc = gaia.jobs.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\nA handler is", 1)[0]
    assert block.count(RUN_FOREVER) == 1, "the example should end by running the worker"
    # A test needs the worker to stop once the queue is empty, not at SIGTERM.
    block = textwrap.dedent(block).replace(RUN_FOREVER, "await worker.run(until_idle=True)")
    return "async def example():\n" + textwrap.indent(block, "    ")


async def test_the_docstring_example_runs_its_job(session_factory, database_url, caplog):
    names = {name: getattr(gaia.jobs, name) for name in gaia.jobs.__all__}
    namespace = {**names, "BaseModel": BaseModel, "session_factory": session_factory,
                 "database_url": database_url}
    exec(compile(example_source(), "gaia.jobs example", "exec"), namespace)  # noqa: S102 - our own docstring
    with caplog.at_level(logging.INFO, logger="gaia.jobs.example.greet"):
        await namespace["example"]()
    assert "hello Ada" in caplog.text
    async with session_factory() as session:
        [job] = (await session.scalars(select(ValidatorJob))).all()
    assert (job.job_type, job.status, job.singleton_key) == (
        "example.greet", JobStatus.SUCCEEDED, "example.greet:name=Ada")
    assert (job.max_attempts, job.timeout_s) == (3, 30)
