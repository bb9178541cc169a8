"""``python -m gaia.localnet``: a whole subnet on this machine, one hindcast run end to end.

It starts, in order: PostgreSQL (the server at GAIA_DATABASE_URL when that is set, else a
private cluster under WORKDIR/postgres), a fresh database migrated to head, the local
weather archive (built once under WORKDIR/archive, then reused) and its HTTP server, fresh
wallets and a static chain, the miners (separate `python -m gaia.miner` processes: a good
model, persistence, a poor model, and one that is killed mid-run), and the validator's job
workers (`python -m gaia.validator worker`). It then creates one hindcast run, drives it to
`completed` through the real queue, HTTP and signatures, sets weights from the run's scores
on the static chain, prints the scoreboard and writes a report (PNG chart and JSON) under
WORKDIR/reports/<time>/. Everything it started is stopped at the end and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gaia.config import Settings
from gaia.localnet.app import LocalnetOptions, run_localnet
from gaia.localnet.calendar import CALENDAR_GRID_DEG
from gaia.tasks.defined_tasks.weather.inference.registry import MODELS

EPILOG = """\
exit status: 0 when the run completed, 1 when it did not (or something failed to start),
130 when interrupted.

The process logs are in WORKDIR/subnet/logs/ (made anew at each start, with the wallets,
chain file and miner data). A PostgreSQL server is needed: installed is enough for the
private cluster; GAIA_DATABASE_URL=postgresql://user@host:port/any uses that server instead
(the database --database-name is dropped and created on it).
"""


def build_parser() -> argparse.ArgumentParser:
    defaults = LocalnetOptions()
    parser = argparse.ArgumentParser(
        prog="python -m gaia.localnet", description=__doc__,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", type=int, default=defaults.miners,
                        help=f"number of miners, at least 4 (default {defaults.miners})")
    parser.add_argument("--grid", type=float, default=None, dest="grid_deg",
                        help=f"archive grid spacing in degrees (default {defaults.grid_deg:g}, "
                             f"{CALENDAR_GRID_DEG:g} with --days; 2.5 is 4x the data and slower)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"seed of the synthetic weather (default {defaults.seed})")
    parser.add_argument("--workdir", type=Path, default=defaults.workdir,
                        help=f"where everything goes (default ./{defaults.workdir})")
    parser.add_argument("--timeout-s", type=float, default=defaults.timeout_s,
                        help=f"give up when the run has not finished after this many seconds "
                             f"(default {defaults.timeout_s:g})")
    parser.add_argument("--keep-running", action="store_true",
                        help="after the report, leave the subnet up (URLs printed) until Ctrl-C")
    parser.add_argument("--database-name", default=defaults.database_name,
                        help=f"database created anew for the run (default {defaults.database_name})")
    parser.add_argument("--validator-processes", type=int, default=defaults.validator_processes,
                        help="validator worker processes sharing the queue "
                             f"(default {defaults.validator_processes})")
    parser.add_argument("--days", type=int, default=None,
                        help="instead of one hindcast, run the subnet as a live validator for "
                             "this many simulated days on a virtual clock with production "
                             "durations; writes calendar.json and a weights-by-day chart")
    parser.add_argument("--models", type=_model_list, default=None,
                        help="the miners' models, comma-separated, one per miner (sets the "
                             "number of miners; the fourth is still killed mid-run), e.g. "
                             f"aurora,persistence,noisy_persistence,persistence; known: "
                             f"{', '.join(sorted(MODELS))}")
    parser.add_argument("--aurora-checkpoint", type=Path, default=None,
                        help="checkpoint for the aurora miners (default: a tiny random-weight "
                             "Aurora, written once under WORKDIR/models)")
    parser.add_argument("--aurora-variant", default=None,
                        help="variant of --aurora-checkpoint (default Aurora)")
    parser.add_argument("--plain", action="store_true",
                        help="log lines instead of the live table even on a terminal")
    return parser


def _model_list(text: str) -> tuple[str, ...]:
    models = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown)}; known: {', '.join(sorted(MODELS))}")
    if len(models) < 4:
        raise argparse.ArgumentTypeError(f"{len(models)} models: at least 4 are needed")
    return models


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.miners < 4:
        build_parser().error(f"--miners {args.miners}: at least 4 are needed")
    if args.days is not None and args.days < 1:
        build_parser().error(f"--days {args.days}: at least 1")
    if args.validator_processes < 1:
        build_parser().error("--validator-processes must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.grid_deg is None:
        args.grid_deg = CALENDAR_GRID_DEG if args.days is not None else LocalnetOptions().grid_deg
    return run_localnet(LocalnetOptions(**vars(args)), Settings())


if __name__ == "__main__":
    sys.exit(main())
