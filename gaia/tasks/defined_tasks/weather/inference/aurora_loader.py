"""Build the miner's Aurora model from its settings, refusing each bad one with one line.

Everything is checked before the miner accepts work: the ``aurora`` extra importable, the
device there, the checkpoint file present (and, when the operator gave one, of the sha256
they meant), the checkpoint fitting the variant's network, the statics file readable and on
the inputs' grid. Nothing is downloaded: ``python -m gaia.miner model fetch aurora`` does
that once, where the network allows.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch
from gaia.tasks.defined_tasks.weather.inference.aurora_statics import (
    StaticFields,
    StaticsError,
    load_statics,
)
from gaia.tasks.defined_tasks.weather.inference.aurora_variants import (
    AuroraVariant,
    UnknownVariant,
    variant_named,
)

if TYPE_CHECKING:
    import torch

    from gaia.tasks.defined_tasks.weather.inference.aurora_model import AuroraModel

INSTALL_HINT = "pip install 'gaia-weather[aurora]'"
HASH_BLOCK_BYTES = 8 << 20


class AuroraSetupError(ValueError):
    """One Aurora setting cannot be used; ``setting`` names it (``checkpoint``, ``device``…)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def import_torch() -> Any:
    """``torch`` with Aurora importable beside it, or the install hint."""
    try:
        import aurora  # noqa: F401 - imported for the check; aurora_model uses it
        import torch
    except ImportError as error:
        raise AuroraSetupError("model", f"the aurora extra is not installed ({error}); "
                                        f"{INSTALL_HINT}") from error
    return torch


def pick_device(choice: str) -> torch.device:
    torch = import_torch()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        built = torch.version.cuda or "no CUDA"
        raise AuroraSetupError("device", f"cuda asked for, but torch {torch.__version__} "
                                         f"({built}) sees no CUDA device")
    return torch.device(choice)


def checked_checkpoint(path: Path | None, expected_sha256: str | None) -> str:
    """The checkpoint's sha256; a missing file or another file than meant raises."""
    if path is None:
        raise AuroraSetupError("checkpoint", "required: a local checkpoint file (get one with "
                                             "`python -m gaia.miner model fetch aurora`)")
    if not path.is_file():
        raise AuroraSetupError("checkpoint", f"{path}: no such file")
    digest = file_sha256(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise AuroraSetupError("checkpoint", f"{path} has sha256 {digest}, not the "
                                             f"{expected_sha256} asked for")
    return digest


def checked_statics(path: Path | None, grid_deg: float) -> StaticFields | None:
    if path is None:
        return None
    try:
        statics = load_statics(path)
        return statics.on(Grid.regular(grid_deg))
    except (StaticsError, GridMismatch) as error:
        raise AuroraSetupError("statics", f"{path}: {error}") from error


def load_network(variant: AuroraVariant, checkpoint: Path, device: torch.device) -> Any:
    """The variant's network with the checkpoint's weights; a file of another shape raises."""
    from gaia.tasks.defined_tasks.weather.inference.aurora_model import build_network

    network = build_network(variant, device)
    try:
        network.load_checkpoint_local(str(checkpoint), strict=True)
    except (RuntimeError, AssertionError, KeyError, EOFError, ValueError,
            pickle.UnpicklingError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AuroraSetupError("checkpoint", f"{checkpoint} is not a checkpoint of variant "
                                             f"{variant.name}: {first}") from error
    return network


def load_aurora(
    *, variant: str, checkpoint: Path | None, device: str = "auto",
    statics: Path | None = None, grid_deg: float = 0.25, checkpoint_sha256: str | None = None,
) -> AuroraModel:
    """The miner's ``aurora`` model, every setting checked (``AuroraSetupError``)."""
    try:
        chosen = variant_named(variant)
    except UnknownVariant as error:
        raise AuroraSetupError("variant", str(error)) from error
    torch_device = pick_device(device)
    digest = checked_checkpoint(checkpoint, checkpoint_sha256)
    static_fields = checked_statics(statics, grid_deg)
    assert checkpoint is not None  # checked_checkpoint refused None
    network = load_network(chosen, checkpoint, torch_device)
    from gaia.tasks.defined_tasks.weather.inference.aurora_model import AuroraModel

    identity = {"variant": chosen.name, "checkpoint": checkpoint.name,
                "checkpoint_sha256": digest, "device": str(torch_device),
                "statics": f"file {statics.name}" if statics else "GFS f000"}
    return AuroraModel(network=network, statics=static_fields, identity=identity)
