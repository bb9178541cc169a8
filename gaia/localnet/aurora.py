"""Aurora in the localnet: the miner flags behind ``--models aurora,...``.

Without ``--aurora-checkpoint`` the miners run a tiny random-weight Aurora (written once
under WORKDIR/models/), which exercises the whole path (torch, the rollout, GFS statics from
the archive's f000) in seconds on a CPU but has no skill. With a checkpoint they run that
variant on the archive's grid; statics come from the archive's GFS f000 either way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gaia.tasks.defined_tasks.weather.inference.aurora_loader import import_torch
from gaia.tasks.defined_tasks.weather.inference.aurora_variants import (
    TINY_VARIANT,
    variant_named,
)

RANDOM_CHECKPOINT = "aurora-tiny-random.ckpt"


def tiny_random_checkpoint(models_dir: Path) -> Path:
    """The localnet's random-weight tiny checkpoint, written on first use."""
    path = models_dir / RANDOM_CHECKPOINT
    if not path.exists():
        import_torch()  # the install hint when the extra is missing
        from gaia.tasks.defined_tasks.weather.inference.aurora_model import (
            save_random_checkpoint,
        )

        save_random_checkpoint(path, variant_named(TINY_VARIANT))
    return path


def aurora_miner_args(models_dir: Path, grid_deg: float, checkpoint: Path | None,
                      variant: str | None, say: Callable[[str], None]) -> tuple[str, ...]:
    """The flags of every ``aurora`` miner of the localnet."""
    if checkpoint is None:
        checkpoint, variant = tiny_random_checkpoint(models_dir), TINY_VARIANT
        say(f"aurora: no --aurora-checkpoint given, so the aurora miners run a tiny "
            f"random-weight Aurora ({checkpoint}): the real path, no skill")
    else:
        import_torch()
        say(f"aurora: variant {variant or 'Aurora'} from {checkpoint}")
    return ("--aurora.variant", variant or "Aurora", "--aurora.checkpoint", str(checkpoint),
            "--aurora.grid-deg", f"{grid_deg:g}")
