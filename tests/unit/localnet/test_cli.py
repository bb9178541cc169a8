"""``python -m gaia.localnet``'s command line: what it accepts, and the one-line error for
what it does not (argparse exits 2 with the message on stderr, before anything starts)."""

from __future__ import annotations

import argparse

import pytest

from gaia.localnet.__main__ import _model_list, build_parser, main
from gaia.localnet.app import LocalnetOptions
from gaia.localnet.subnet import DYING_MINER, miner_roster
from gaia.tasks.defined_tasks.weather.inference.registry import MODELS


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_the_defaults_are_the_options_defaults() -> None:
    args = build_parser().parse_args([])
    defaults = LocalnetOptions()
    assert (args.miners, args.seed, args.workdir) == (defaults.miners, defaults.seed,
                                                      defaults.workdir)
    assert args.days is None and args.models is None and args.grid_deg is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--miners", "3"], "--miners 3: at least 4 are needed"),
    (["--days", "0"], "--days 0: at least 1"),
    (["--validator-processes", "0"], "--validator-processes must be at least 1"),
    (["--models", "persistence,persistence,nowcast,persistence"], "unknown model(s) nowcast"),
    (["--models", "persistence,persistence"], "2 models: at least 4 are needed"),
    (["--miners", "four"], "invalid int value: 'four'"),
])
def test_bad_arguments_get_one_line_and_start_nothing(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    last_line = _refused(argv, capsys).strip().splitlines()[-1]
    assert last_line.startswith("python -m gaia.localnet: error: ") and message in last_line


def test_a_model_list_is_trimmed_and_checked() -> None:
    names = sorted(MODELS)[:1] * 4
    assert _model_list(" , ".join(names) + ",") == tuple(names)
    with pytest.raises(argparse.ArgumentTypeError, match="known: "):
        _model_list("persistence,persistence,persistence,not_a_model")


def test_help_names_the_exit_statuses_and_the_database_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "exit status: 0 when the run completed" in out and "GAIA_DATABASE_URL" in out
    for flag in ("--days", "--models", "--grid", "--keep-running", "--aurora-checkpoint"):
        assert flag in out


def test_the_default_roster_has_a_good_a_plain_a_poor_and_a_dying_miner() -> None:
    roster = miner_roster(6)
    assert [m.model for m in roster] == ["spectral_advection", "persistence",
                                         "noisy_persistence", "persistence",
                                         "spectral_advection", "persistence"]
    assert [m.dies for m in roster] == [i == DYING_MINER for i in range(6)]
    assert [m.role for m in roster] == [f"miner{i}" for i in range(1, 7)]


def test_named_models_get_their_flags_and_the_fourth_still_dies() -> None:
    models = ["aurora", "persistence", "aurora", "persistence"]
    roster = miner_roster(4, models, {"aurora": ("--aurora.variant", "tiny")})
    assert [m.model_args for m in roster] == [("--aurora.variant", "tiny"), (),
                                              ("--aurora.variant", "tiny"), ()]
    assert roster[DYING_MINER].dies and not any(m.dies for m in roster[:DYING_MINER])


@pytest.mark.parametrize(("count", "models", "message"), [
    (3, None, "at least 4 miners"),
    (5, ["persistence"] * 4, "4 models for 5 miners"),
])
def test_an_impossible_roster_is_refused(count: int, models: list[str] | None,
                                         message: str) -> None:
    with pytest.raises(ValueError, match=message):
        miner_roster(count, models)
