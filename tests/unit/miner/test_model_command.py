"""``python -m gaia.miner model fetch|check aurora``: fetched files are checked before the
operator is told to use them, and the printed flags carry the checkpoint's sha256."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.aurora import require_aurora, write_statics_pickle

require_aurora()

from gaia.miner import model_command  # noqa: E402
from gaia.miner.model_command import FetchFailed, fetch_files  # noqa: E402
from gaia.tasks.defined_tasks.weather.data.grid import Grid  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference.aurora_loader import file_sha256  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference.aurora_variants import (  # noqa: E402
    STATICS_FILE,
    VARIANTS,
    AuroraVariant,
)

TINY_PUBLISHED = AuroraVariant("tiny", "Aurora", "tiny, as if published", "tiny.ckpt", None,
                               VARIANTS["tiny"].options)


def copying_download(files: dict[str, Path], calls: list[tuple[str, str]]):
    def download(repo: str, filename: str, revision: str | None, folder: Path, hub: str) -> Path:
        calls.append((repo, filename))
        return Path(shutil.copy(files[filename], folder / filename))
    return download


def test_fetch_downloads_checks_and_prints_the_flags(tmp_path: Path, tiny_checkpoint: Path) -> None:
    statics = write_statics_pickle(tmp_path / "s.pickle", Grid.regular(5.0))
    calls: list[tuple[str, str]] = []
    download = copying_download({"tiny.ckpt": tiny_checkpoint, STATICS_FILE: statics}, calls)
    checked = fetch_files(TINY_PUBLISHED, tmp_path / "models", with_statics=True,
                          hub_url="http://hub.invalid", grid_deg=5.0, device="cpu",
                          download=download)
    assert calls == [("microsoft/aurora", "tiny.ckpt"), ("microsoft/aurora", STATICS_FILE)]
    assert checked.checkpoint_sha256 == file_sha256(tiny_checkpoint)
    report = checked.report()
    assert f"--aurora.checkpoint-sha256 {file_sha256(tiny_checkpoint)}" in report
    assert f"--aurora.statics {tmp_path / 'models' / STATICS_FILE}" in report


def test_a_fetched_checkpoint_of_another_variant_fails(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = VARIANTS["AuroraSmallPretrained"].checkpoint_file
    download = copying_download({name: tiny_checkpoint}, [])
    status = model_command.main(["fetch", "aurora", "--aurora.variant", "AuroraSmall",
                                 "--no-statics", "--out", str(tmp_path)], download)
    error = capsys.readouterr().err.strip()
    assert status == 1
    assert error.startswith("python -m gaia.miner model: error: ")
    assert "is not a checkpoint of variant AuroraSmallPretrained" in error and "\n" not in error


def test_an_unreachable_hub_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(repo: str, filename: str, revision: str | None, folder: Path, hub: str):
        raise FetchFailed(f"cannot download {filename} from {hub}/{repo}: connection refused")

    status = model_command.main(["fetch", "aurora", "--out", str(tmp_path)], unreachable)
    assert status == 1
    assert capsys.readouterr().err == (
        "python -m gaia.miner model: error: cannot download aurora-0.25-finetuned.ckpt from "
        "https://huggingface.co/microsoft/aurora: connection refused\n")


def test_variants_without_published_weights_cannot_be_fetched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert model_command.main(["fetch", "aurora", "--aurora.variant", "tiny",
                               "--out", str(tmp_path)]) == 1
    assert "variant tiny has no published weights" in capsys.readouterr().err


def test_check_of_files_already_here(
    tmp_path: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statics = write_statics_pickle(tmp_path / "s.pickle", Grid.regular(5.0))
    status = model_command.main(["check", "aurora", "--aurora.variant", "tiny",
                                 "--aurora.checkpoint", str(tiny_checkpoint),
                                 "--aurora.statics", str(statics), "--aurora.grid-deg", "5"])
    out = capsys.readouterr().out
    assert status == 0
    assert f"sha256 {file_sha256(tiny_checkpoint)}" in out and f"sha256 {file_sha256(statics)}" in out
    assert model_command.main(["check", "aurora", "--aurora.variant", "tiny",
                               "--aurora.checkpoint", str(tiny_checkpoint),
                               "--aurora.statics", str(statics)]) == 1
    assert "721x1440" in capsys.readouterr().err
