"""Why a previous validator's database cannot be adopted automatically, found before anything
changes: one message naming every problem, the rows by id, and what the operator can do."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gaia.database.previous_validator import reading
from gaia.database.previous_validator import statuses as st
from gaia.database.previous_validator.decisions import RunConflict, choose_runs

MAX_HOTKEY_LENGTH = 64
LISTED_IDS = 20


class AdoptionRefused(RuntimeError):
    """The database stays exactly as it was; the message says what to fix."""


def check(conn: Connection) -> None:
    """Raise :class:`AdoptionRefused` naming every problem; return when adoption can go ahead."""
    carried, conflicts = choose_runs(reading.runs(conn))
    problems = [
        *_unknown_statuses(conn, "weather_forecast_runs", st.RUN_STATUSES),
        *_unknown_statuses(conn, "weather_miner_responses", frozenset(st.RESPONSE_STATUSES)),
        *(_describe(conn, conflict) for conflict in conflicts),
        *_duplicate_hotkeys(conn, carried),
        *_long_hotkeys(conn),
    ]
    if problems:
        raise AdoptionRefused("cannot adopt the previous validator's database, nothing was "
                              "changed: " + "; ".join(problems))


def _ids(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:LISTED_IDS]))
    return shown + (f" and {len(ids) - LISTED_IDS} more" if len(ids) > LISTED_IDS else "")


def _unknown_statuses(conn: Connection, table: str, known: frozenset[str]) -> list[str]:
    found = conn.scalars(text(f"SELECT DISTINCT status FROM {table} ORDER BY status"))
    return [
        f"{table}.status {value!r} has no mapping (rows "
        f"{_ids(reading.ids_where(conn, table, 'status = :s', s=value))})"
        for value in found if value not in known
    ]


def _describe(conn: Connection, conflict: RunConflict) -> str:
    others = "; ".join(
        f"deleting run {run.id} ({run.status}) from weather_forecast_runs cascades into "
        + (", ".join(f"{table} ({n} rows)" for table, n in cascade(conn, run.id)) or "nothing")
        for run in conflict.others
    )
    ids = ", ".join(str(r.id) for r in (conflict.keep, *conflict.others))
    return (f"runs {ids} share the GFS init time {conflict.gfs_init_time:%Y-%m-%d %H:%MZ} and "
            f"more than one has miner responses; this upgrade would keep run {conflict.keep.id} "
            f"({conflict.keep.status}, {conflict.keep.responses} responses): {others}")


def _duplicate_hotkeys(conn: Connection, carried: set[int]) -> list[str]:
    rows = conn.execute(text(
        "SELECT run_id, miner_hotkey, array_agg(id ORDER BY id) FROM weather_miner_responses"
        " WHERE run_id = ANY(:runs) GROUP BY run_id, miner_hotkey HAVING count(*) > 1"
        " ORDER BY run_id"), {"runs": sorted(carried)})
    return [f"run {run_id} has responses {_ids(ids)} from one hotkey {hotkey}; delete all but one"
            for run_id, hotkey, ids in rows]


def _long_hotkeys(conn: Connection) -> list[str]:
    ids = reading.ids_where(conn, "weather_miner_responses", "length(miner_hotkey) > :n",
                            n=MAX_HOTKEY_LENGTH)
    return [f"responses {_ids(ids)} have a miner_hotkey longer than {MAX_HOTKEY_LENGTH} "
            f"characters"] if ids else []


_CASCADING_FOREIGN_KEYS = text(
    """
    SELECT c.conrelid::regclass::text, a.attname, p.attname
    FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    JOIN pg_attribute p ON p.attrelid = c.confrelid AND p.attnum = c.confkey[1]
    WHERE c.contype = 'f' AND c.confdeltype = 'c' AND c.confrelid = CAST(:parent AS regclass)
      AND cardinality(c.conkey) = 1
    ORDER BY 1
    """
)


def cascade(conn: Connection, run_id: int) -> list[tuple[str, int]]:
    """Rows that ``DELETE FROM weather_forecast_runs WHERE id = run_id`` would delete with it,
    per table, following every ON DELETE CASCADE foreign key (a row reached by several paths,
    like a score through its run and its response, counts once)."""
    paths: dict[str, list[str]] = {}
    pending = [("weather_forecast_runs", "id = :run")]
    while pending:
        parent, where = pending.pop(0)
        for child, column, key in conn.execute(_CASCADING_FOREIGN_KEYS, {"parent": parent}):
            child_where = f"{column} IN (SELECT {key} FROM {parent} WHERE {where})"
            paths.setdefault(child, []).append(child_where)
            pending.append((child, child_where))
    counts = {child: conn.scalar(text(f"SELECT count(*) FROM {child} WHERE "
                                      + " OR ".join(f"({w})" for w in wheres)), {"run": run_id})
              for child, wheres in paths.items()}
    return sorted((child, n) for child, n in counts.items() if n)
