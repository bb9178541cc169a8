"""Adopting the previous validator's real database (Gaia v2.9.96) and giving it back.

The database is its real schema with rows in every status its code writes; ``alembic upgrade
head`` (through ``gaia.database.migrations``) must adopt it with no other step, keep every row,
and ``downgrade base`` must give the previous validator a database its code writes to again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from gaia.database import migrations
from gaia.database.previous_validator import statuses as st
from gaia.database.previous_validator.refusals import AdoptionRefused
from gaia.database.previous_validator.rollback import RollbackRefused
from tests.fixtures.previous_validator import (
    PAST,
    PREVIOUS_HEAD,
    catalog,
    current_init,
    dsn,
    hotkey,
    insert_response,
    insert_run,
    insert_score,
    other_tasks_rows,
    previous_jobs,
    snapshot,
    statuses_md,
)

STILL_RUNNING = {  # old status -> the stage of this project's state machine it waits in
    "received": "created",
    "fetch_initiated": "fetch_initiated",
    "input_validation_complete": "fetch_initiated",
    "inference_triggered": "inference_running",
    "inference_running": "inference_running",
    "awaiting_miner_completion": "inference_running",
    "retry_scheduled": "inference_running",
    "forecast_ready": "inference_running",  # no signed manifest: not committed
    "forecast_submitted": "inference_running",
    "verifying_manifest": "inference_running",
    "verified_manifest_store_opened": "inference_running",
}
FAILURES = {"failed", "era5_scoring_failed", "input_fetch_error", "miner_offline",
            "verification_error", "verification_failed", "verification_timeout"}
SET_ASIDE = ("weather_forecast_runs", "weather_miner_responses", "weather_miner_scores",
             "validator_jobs")
HISTORY, CURRENT, SEEDING, ABANDONED, KEPT = 1, 2, 3, 4, 5
FIRST_STATUS_RUN = 100


@dataclass
class Seeded:
    """What each seeded row must become: response id -> (status, reason fragment or None)."""

    responses: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    runs: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    resumed: dict[int, str] = field(default_factory=dict)  # response id -> job type
    day1: dict[int, float] = field(default_factory=dict)  # response id -> score
    era5: dict[int, float] = field(default_factory=dict)


def test_every_status_the_previous_code_writes_is_mapped() -> None:
    assert set(statuses_md("weather_miner_responses")) == set(st.RESPONSE_STATUSES)
    assert set(statuses_md("weather_miner_responses")) == set(STILL_RUNNING) | FAILURES
    assert set(statuses_md("weather_forecast_runs")) == st.RUN_STATUSES
    assert len(st.RUN_STATUSES) == 35 and len(st.RESPONSE_STATUSES) == 18


async def _seed_history(conn: asyncpg.Connection, seeded: Seeded) -> None:
    """A finished run with a response in every status, some scored by the previous validator."""
    await insert_run(conn, HISTORY, PAST, "scored", error="kept text")
    seeded.runs[HISTORY] = ("completed", "kept text")
    for uid, status in enumerate(statuses_md("weather_miner_responses")):
        error = f"boom {uid}" if status in FAILURES else None
        rid = await insert_response(conn, HISTORY, uid, status, error=error)
        seeded.responses[rid] = (("failed", f"previous validator: {status}: boom {uid}")
                                 if status in FAILURES else ("failed", f"late: the previous "
                                                             f"validator left it {status}"))
    scored = await insert_response(conn, HISTORY, 18, "verified_manifest_store_opened")
    for score, day in ((0.5, 1), (0.6, 2)):  # the latest of duplicate rows counts
        await insert_score(conn, scored, HISTORY, 18, "day1_qc_score", score,
                           PAST + timedelta(days=day))
    await insert_score(conn, scored, HISTORY, 18, "era5_final_composite_score", 0.9, PAST)
    await insert_score(conn, scored, HISTORY, 18, "era5_rmse", 3.0, PAST)
    day1_only = await insert_response(conn, HISTORY, 19, "verified_manifest_store_opened")
    await insert_score(conn, day1_only, HISTORY, 19, "day1_qc_score", 0.4, PAST)
    seeded.responses[scored] = ("era5_scored", None)
    seeded.responses[day1_only] = ("failed", "day-1 scored")
    seeded.day1.update({scored: 0.6, day1_only: 0.4})
    seeded.era5[scored] = 0.9


async def _seed_current(conn: asyncpg.Connection, seeded: Seeded) -> None:
    """Today's run, miners still running; a run still seeding; both inside the commit window."""
    await insert_run(conn, CURRENT, current_init(1), "awaiting_results")
    seeded.runs[CURRENT] = ("querying_miners", None)
    for uid, (old, new) in enumerate(STILL_RUNNING.items()):
        rid = await insert_response(conn, CURRENT, uid, old)
        seeded.responses[rid] = (new, None)
        seeded.resumed[rid] = "weather.query_miner" if new == "created" else "weather.poll_miner"
    no_job_id = await insert_response(conn, CURRENT, 20, "inference_running", job_id=None)
    offline = await insert_response(conn, CURRENT, 21, "miner_offline")
    seeded.responses[no_job_id] = ("created", None)
    seeded.resumed[no_job_id] = "weather.query_miner"
    seeded.responses[offline] = ("failed", "previous validator: miner_offline")
    await insert_run(conn, SEEDING, current_init(2), "seeding")
    seeded.runs[SEEDING] = ("created", None)


async def _seed_runs(conn: asyncpg.Connection, seeded: Seeded) -> None:
    """A run in every run status, none with responses; and an abandoned duplicate."""
    for i, status in enumerate(statuses_md("weather_forecast_runs")):
        run_id = FIRST_STATUS_RUN + i
        error = "GFS download failed" if status == "error" else None
        await insert_run(conn, run_id, PAST + timedelta(days=i + 10), status, error)
        seeded.runs[run_id] = ("error", error or f"previous validator: {status}, no miner responses")
    init = PAST + timedelta(days=5)
    await insert_run(conn, ABANDONED, init, "stale_abandoned")
    await insert_run(conn, KEPT, init, "scored")
    rid = await insert_response(conn, KEPT, 0, "verification_failed")
    seeded.runs[KEPT] = ("completed", None)
    seeded.responses[rid] = ("failed", "previous validator: verification_failed")


async def _seed(url: str) -> Seeded:
    seeded = Seeded()
    conn = await asyncpg.connect(dsn(url))
    try:
        await other_tasks_rows(conn)
        await _seed_history(conn, seeded)
        await _seed_current(conn, seeded)
        await _seed_runs(conn, seeded)
        await conn.execute("SELECT setval('weather_forecast_runs_id_seq', 200)")
        await previous_jobs(conn, HISTORY)
        await conn.execute(
            "INSERT INTO weather_forecast_component_scores (run_id, response_id, miner_uid,"
            " miner_hotkey, score_type, lead_hours, valid_time_utc, variable_name, rmse)"
            " VALUES (1, 1, 0, $1, 'era5', 24, now(), '2t', 1.5)", hotkey(0))
        return seeded
    finally:
        await conn.close()


@dataclass
class Adopted:
    url: str
    seeded: Seeded
    rows_before: dict[str, list[str]]
    catalog_before: list[tuple[str, ...]]


@pytest.fixture
def adopted(previous_database_url: str) -> Iterator[Adopted]:
    url = previous_database_url
    seeded = asyncio.run(_seed(url))
    before = Adopted(url, seeded, asyncio.run(snapshot(url)), asyncio.run(catalog(url)))
    migrations.upgrade(url)
    yield before


async def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(url))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(url, query, *args))


def test_upgrade_maps_every_response_row_by_row(adopted: Adopted) -> None:
    rows = {r["id"]: r for r in fetch(adopted.url, "SELECT id, status::text AS status,"
                                      " failure_reason, failed_step FROM weather_miner_responses")}
    assert set(rows) == set(adopted.seeded.responses)
    for rid, (status, reason) in adopted.seeded.responses.items():
        row = rows[rid]
        assert row["status"] == status, rid
        if reason is None:
            assert row["failure_reason"] is None, rid
        else:
            assert reason in row["failure_reason"] and row["failed_step"], rid


def test_upgrade_rolls_runs_up_and_resumes_what_still_runs(adopted: Adopted) -> None:
    runs = {r["id"]: (r["status"], r["error"]) for r in fetch(
        adopted.url, "SELECT id, status::text AS status, error FROM weather_forecast_runs")}
    assert runs == adopted.seeded.runs  # the abandoned duplicate stays behind
    jobs = {r["singleton_key"]: r["job_type"] for r in fetch(
        adopted.url, "SELECT singleton_key, job_type FROM validator_jobs WHERE status = 'queued'")}
    expected = {f"weather.seed:run={SEEDING}": "weather.seed"}
    for rid, job_type in adopted.seeded.resumed.items():
        (row,) = fetch(adopted.url, "SELECT run_id, miner_hotkey FROM weather_miner_responses"
                                    " WHERE id = $1", rid)
        expected[f"{job_type}:run={row['run_id']}:hotkey={row['miner_hotkey']}"] = job_type
    assert jobs == expected
    orphans = fetch(adopted.url, "SELECT id FROM weather_miner_responses WHERE status NOT IN"
                                 " ('failed', 'era5_scored') AND id <> ALL($1::bigint[])",
                    list(adopted.seeded.resumed))
    assert orphans == []


def test_upgrade_carries_the_scores_weights_use_and_the_metagraph(adopted: Adopted) -> None:
    scores = {(r["miner_hotkey"], r["kind"]): r["value"] for r in fetch(
        adopted.url, "SELECT miner_hotkey, kind::text AS kind, value FROM weather_miner_scores"
                     " WHERE variable = 'all' AND metric = 'score'")}
    assert scores == {(hotkey(18), "day1"): 0.6, (hotkey(18), "rollup"): 0.9,
                      (hotkey(19), "day1"): 0.4, (hotkey(19), "rollup"): 0.4}
    miners = {r["hotkey"]: r for r in fetch(adopted.url, "SELECT * FROM miners")}
    assert len(miners) == 24
    assert (miners[hotkey(18)]["uid"], miners[hotkey(18)]["ip"], miners[hotkey(18)]["port"]) == (
        18, "10.0.0.1", 8091)
    (first,) = fetch(adopted.url, "SELECT min(created_at) AS t FROM weather_miner_responses"
                                  " WHERE run_id = $1", HISTORY)
    assert miners[hotkey(18)]["registered_at"] <= first["t"]  # its carried run counts


def test_upgrade_keeps_every_previous_row_and_other_tasks_byte_for_byte(adopted: Adopted) -> None:
    after = asyncio.run(snapshot(adopted.url))
    for table, rows in adopted.rows_before.items():
        kept_as = f"previous_{table}" if table in SET_ASIDE else table
        assert after[kept_as] == rows, table
    (version,) = fetch(adopted.url, "SELECT version_num FROM alembic_version")
    assert version["version_num"] == PREVIOUS_HEAD


def test_a_node_table_delete_cannot_reach_this_projects_rows(adopted: Adopted) -> None:
    async def delete_and_count() -> int:
        conn = await asyncpg.connect(dsn(adopted.url))
        try:
            async with conn.transaction():
                await conn.execute("DELETE FROM node_table")
                count = await conn.fetchval("SELECT count(*) FROM weather_miner_responses")
                raise _Rollback(count)
        except _Rollback as rollback:
            return rollback.count
        finally:
            await conn.close()

    assert asyncio.run(delete_and_count()) == len(adopted.seeded.responses)


class _Rollback(Exception):
    def __init__(self, count: int) -> None:
        self.count = count


async def _work_after_adoption(url: str) -> tuple[int, int]:
    """What this project does next: a carried miner fails, a new live run and a hindcast."""
    conn = await asyncpg.connect(dsn(url))
    try:
        await conn.execute(
            "UPDATE weather_miner_responses SET status = 'failed', failed_step = 'poll_miner',"
            " failure_reason = 'miner failed: oom', updated_at = now() + interval '1 second'"
            " WHERE run_id = $1 AND miner_uid = 1", CURRENT)
        ids = []
        for mode in ("live", "hindcast"):
            run = await conn.fetchval(
                "INSERT INTO weather_forecast_runs (gfs_init_time, mode, status, commit_deadline,"
                " grid_deg) VALUES ($1, $2, 'scoring_day1', $1, 0.25) RETURNING id",
                current_init(30 if mode == "live" else 300), mode)
            response = await conn.fetchval(
                "INSERT INTO weather_miner_responses (run_id, miner_hotkey, miner_uid, status,"
                " manifest_hash) VALUES ($1, $2, 5, 'forecast_ready', 'ab') RETURNING id",
                run, hotkey(5))
            ids.append((run, response))
        return ids[0]
    finally:
        await conn.close()


async def _previous_validator_writes(url: str, run_id: int, response_id: int) -> None:
    """Writes as the previous code makes them, with its status strings."""
    conn = await asyncpg.connect(dsn(url))
    try:
        new_run = await conn.fetchval(
            "INSERT INTO weather_forecast_runs (run_initiation_time, target_forecast_time_utc,"
            " gfs_init_time_utc, status) VALUES (now(), now(), now(), 'seeding') RETURNING id")
        assert new_run > run_id
        await conn.execute("UPDATE weather_forecast_runs SET status = 'awaiting_results'"
                           " WHERE id = $1", new_run)
        new_response = await conn.fetchval(
            "INSERT INTO weather_miner_responses (run_id, miner_uid, miner_hotkey, response_time)"
            " VALUES ($1, 6, $2, now()) RETURNING id", new_run, hotkey(6))
        assert new_response > response_id
        await conn.execute("UPDATE weather_miner_responses SET status = 'verifying_manifest'"
                           " WHERE id = $1", new_response)
        await conn.execute(
            "INSERT INTO weather_miner_scores (response_id, run_id, miner_uid, miner_hotkey,"
            " score_type, score, calculation_time, variable_level) VALUES ($1, $2, 6, $3,"
            " 'day1_qc_score', 0.7, now(), 'overall_day1') ON CONFLICT (response_id, score_type,"
            " lead_hours, variable_level, valid_time_utc) DO UPDATE SET score = EXCLUDED.score",
            new_response, new_run, hotkey(6))
        await conn.execute("INSERT INTO validator_jobs (job_type, singleton_key, run_id)"
                           " VALUES ('weather.seed', $1, $2)", f"seed_run_{new_run}", new_run)
    finally:
        await conn.close()


def test_downgrade_gives_the_previous_validator_its_database(adopted: Adopted) -> None:
    url = adopted.url
    run_id, response_id = asyncio.run(_work_after_adoption(url))
    migrations.downgrade(url, "base")

    assert asyncio.run(catalog(url)) == adopted.catalog_before
    after = asyncio.run(snapshot(url))
    changed = {"weather_forecast_runs", "weather_miner_responses"}
    assert {t: r for t, r in after.items() if t not in changed} == {
        t: r for t, r in adopted.rows_before.items() if t not in changed}
    runs = {r["id"]: r["status"] for r in fetch(url, "SELECT id, status FROM weather_forecast_runs")}
    assert runs[run_id] == "scoring" and len(runs) == len(adopted.seeded.runs) + 2  # + abandoned
    responses = {(r["run_id"], r["miner_uid"]): (r["status"], r["error_message"]) for r in fetch(
        url, "SELECT run_id, miner_uid, status, error_message FROM weather_miner_responses")}
    assert responses[(CURRENT, 1)] == ("failed", "miner failed: oom")
    assert responses[(CURRENT, 2)] == ("input_validation_complete", None)  # untouched: as it was
    assert responses[(run_id, 5)] == ("forecast_ready", None)  # never back as verified
    assert len(responses) == len(adopted.seeded.responses) + 1

    asyncio.run(_previous_validator_writes(url, run_id, response_id))
    migrations.upgrade(url)
    (version,) = fetch(url, f"SELECT version_num FROM {migrations.VERSION_TABLE}")
    assert version["version_num"] == migrations.head_revision()
    (carried,) = fetch(url, "SELECT r.status::text AS run, m.status::text AS response,"
                            " m.failure_reason FROM weather_forecast_runs r JOIN"
                            " weather_miner_responses m ON m.run_id = r.id WHERE r.id = $1", run_id)
    assert (carried["run"], carried["response"]) == ("completed", "failed")  # past its deadline
    assert carried["failure_reason"].startswith("late: the previous validator left it forecast_ready")


async def _conflicting_runs(url: str) -> None:
    conn = await asyncpg.connect(dsn(url))
    try:
        await other_tasks_rows(conn)
        for run_id, status in ((7, "stale_abandoned"), (8, "scored")):
            await insert_run(conn, run_id, PAST, status)
            rid = await insert_response(conn, run_id, run_id, "verification_failed")
            await insert_score(conn, rid, run_id, run_id, "day1_qc_score", 0.1, PAST)
        await insert_response(conn, 8, 9, "mystery")
    finally:
        await conn.close()


def test_a_refusal_names_the_rows_and_changes_nothing(previous_database_url: str) -> None:
    url = previous_database_url
    asyncio.run(_conflicting_runs(url))
    rows, schema = asyncio.run(snapshot(url)), asyncio.run(catalog(url))
    with pytest.raises(AdoptionRefused) as refused:
        migrations.upgrade(url)
    message = str(refused.value)
    assert "runs 8, 7 share the GFS init time" in message
    assert "would keep run 8" in message
    assert ("deleting run 7 (stale_abandoned) from weather_forecast_runs cascades into"
            " weather_miner_responses (1 rows), weather_miner_scores (1 rows)") in message
    assert "weather_miner_responses.status 'mystery' has no mapping (rows 3)" in message
    assert asyncio.run(snapshot(url)) == rows and asyncio.run(catalog(url)) == schema


def test_the_start_up_check_names_the_previous_validators_database(
    previous_database_url: str,
) -> None:
    async def check() -> str:
        engine = create_async_engine(previous_database_url)
        try:
            with pytest.raises(migrations.SchemaOutOfDate) as out_of_date:
                await migrations.require_head(engine)
            return str(out_of_date.value)
        finally:
            await engine.dispose()

    message = asyncio.run(check())
    assert "previous validator's (Gaia v2.9.96" in message
    assert migrations.UPGRADE_COMMAND in message


def test_the_admin_command_prints_a_refusal_on_one_line(
    previous_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gaia.validator import admin

    asyncio.run(_conflicting_runs(previous_database_url))
    assert admin.main(["--database-url", previous_database_url, "db", "upgrade"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("gaia.validator.admin: cannot adopt the previous validator's database")
    assert admin.main(["--database-url", previous_database_url, "db", "current"]) == 0
    assert "the previous validator's database" in capsys.readouterr().out


def test_a_rollback_refuses_rows_the_previous_schema_cannot_hold(adopted: Adopted) -> None:
    async def response_without_uid() -> int:
        conn = await asyncpg.connect(dsn(adopted.url))
        try:
            return await conn.fetchval(
                "INSERT INTO weather_miner_responses (run_id, miner_hotkey) VALUES ($1, '5New')"
                " RETURNING id", CURRENT)
        finally:
            await conn.close()

    rid = asyncio.run(response_without_uid())
    with pytest.raises(RollbackRefused, match=f"responses {rid} have no miner uid"):
        migrations.downgrade(adopted.url, "base")
    (version,) = fetch(adopted.url, f"SELECT version_num FROM {migrations.VERSION_TABLE}")
    assert version["version_num"] == migrations.head_revision()
