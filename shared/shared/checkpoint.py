"""Resumable training state: modules/optimisers/schedulers (anything with ``state_dict``), a torch RNG and the
step, written atomically (temporary file, then rename) so a run killed mid-write keeps its last good state."""
from __future__ import annotations

from pathlib import Path

import torch


def save_state(path: str | Path, step: int, generator: torch.Generator | None = None, **objects) -> None:
    """Write ``{name: obj.state_dict()}``, the generator state and ``step`` to ``path`` atomically."""
    path = Path(path)
    state = {name: obj.state_dict() for name, obj in objects.items()}
    state["step"] = step
    if generator is not None:
        state["gen"] = generator.get_state()
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: str | Path | None, generator: torch.Generator | None = None, **objects) -> int:
    """Restore what ``save_state`` wrote into ``objects`` (and ``generator``); returns the step to resume from
    (0 when there is no checkpoint)."""
    if path is None or not Path(path).exists():
        return 0
    state = torch.load(path, weights_only=False)
    for name, obj in objects.items():
        obj.load_state_dict(state[name])
    if generator is not None:
        generator.set_state(state["gen"])
    return int(state["step"])
