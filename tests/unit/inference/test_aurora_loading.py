"""Every Aurora setting checked before the miner accepts work, each refusal one line naming
the setting: the extra, the device, the checkpoint (present, the one meant, of the variant),
and the statics (readable, only arrays, on the inputs' grid)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.aurora import (
    require_aurora,
    statics_arrays,
    write_statics_netcdf,
    write_statics_pickle,
)

require_aurora()

import torch  # noqa: E402

from gaia.config import MinerSettings  # noqa: E402
from gaia.miner.startup import StartupError, build_model  # noqa: E402
from gaia.tasks.defined_tasks.weather.data.grid import Grid  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference.aurora_loader import (  # noqa: E402
    AuroraSetupError,
    file_sha256,
    import_torch,
    load_aurora,
    pick_device,
)
from gaia.tasks.defined_tasks.weather.inference.aurora_statics import (  # noqa: E402
    StaticsError,
    load_statics,
)

GRID = Grid.regular(5.0)


def setup_error(**options: object) -> AuroraSetupError:
    with pytest.raises(AuroraSetupError) as caught:
        load_aurora(**{"variant": "tiny", "device": "cpu", "grid_deg": 5.0, **options})
    return caught.value


def test_checkpoint_is_required_and_must_exist(tmp_path: Path) -> None:
    assert setup_error(checkpoint=None).setting == "checkpoint"
    error = setup_error(checkpoint=tmp_path / "nowhere.ckpt")
    assert (error.setting, str(error)) == ("checkpoint", f"{tmp_path / 'nowhere.ckpt'}: no such file")


def test_checkpoint_of_another_sha256_is_refused(tiny_checkpoint: Path) -> None:
    error = setup_error(checkpoint=tiny_checkpoint, checkpoint_sha256="0" * 64)
    assert error.setting == "checkpoint"
    assert f"has sha256 {file_sha256(tiny_checkpoint)}, not the {'0' * 64}" in str(error)
    model = load_aurora(variant="tiny", checkpoint=tiny_checkpoint, device="cpu",
                        checkpoint_sha256=file_sha256(tiny_checkpoint))
    assert model.identity["checkpoint_sha256"] == file_sha256(tiny_checkpoint)


def test_checkpoint_of_another_variant_is_refused(tiny_checkpoint: Path) -> None:
    error = setup_error(checkpoint=tiny_checkpoint, variant="AuroraSmall")
    assert error.setting == "checkpoint"
    assert "is not a checkpoint of variant AuroraSmallPretrained" in str(error)
    assert "\n" not in str(error)


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a torch file at all")
    error = setup_error(checkpoint=junk)
    assert error.setting == "checkpoint" and "is not a checkpoint of variant tiny" in str(error)


def test_unknown_variant_names_the_known_ones(tiny_checkpoint: Path) -> None:
    error = setup_error(checkpoint=tiny_checkpoint, variant="Aurora7")
    assert error.setting == "variant" and "AuroraSmallPretrained" in str(error)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_a_device() -> None:
    with pytest.raises(AuroraSetupError, match="cuda asked for") as caught:
        pick_device("cuda")
    assert caught.value.setting == "device"
    assert pick_device("auto").type == "cpu"


def test_missing_extra_gives_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aurora", None)
    with pytest.raises(AuroraSetupError, match=r"pip install 'gaia-weather\[aurora\]'") as caught:
        import_torch()
    assert caught.value.setting == "model"


@pytest.mark.parametrize("writer", [write_statics_pickle, write_statics_netcdf])
def test_statics_files_load_on_their_grid(tmp_path: Path, writer, tiny_checkpoint: Path) -> None:
    path = writer(tmp_path / ("statics.pickle" if writer is write_statics_pickle else "s.nc"), GRID)
    statics = load_statics(path)
    assert statics.grid == GRID
    for name, values in statics_arrays(GRID).items():
        np.testing.assert_array_equal(statics.fields[name], values)
    model = load_aurora(variant="tiny", checkpoint=tiny_checkpoint, device="cpu",
                        statics=path, grid_deg=5.0)
    assert not model.needs_gfs_statics and model.identity["statics"] == f"file {path.name}"


def test_statics_on_another_grid_are_refused(tmp_path: Path, tiny_checkpoint: Path) -> None:
    path = write_statics_pickle(tmp_path / "statics.pickle", GRID)
    error = setup_error(checkpoint=tiny_checkpoint, statics=path, grid_deg=0.25)
    assert error.setting == "statics"
    assert "37x72 grid (5 deg), the inputs on 721x1440 (0.25 deg)" in str(error)


class Payload:
    def __reduce__(self):  # what a hostile pickle does: call something on load
        return (print, ("ran",))


def test_a_pickle_with_more_than_arrays_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "statics.pickle"
    path.write_bytes(pickle.dumps({"lsm": Payload()}))
    with pytest.raises(StaticsError, match="builtins.print, not only numpy arrays"):
        load_statics(path)


def test_statics_missing_a_field_are_refused(tmp_path: Path) -> None:
    arrays = statics_arrays(GRID)
    del arrays["slt"]
    path = tmp_path / "statics.pickle"
    path.write_bytes(pickle.dumps(arrays))
    with pytest.raises(StaticsError, match="no slt in the pickle"):
        load_statics(path)


def test_startup_names_the_flag(tmp_path: Path) -> None:
    miner = MinerSettings(model="aurora", device="cpu",
                          aurora={"variant": "tiny", "checkpoint": tmp_path / "x.ckpt"})
    with pytest.raises(StartupError, match=r"^--aurora\.checkpoint: .*x\.ckpt: no such file$"):
        build_model(miner)
