"""lucent 0.1.8 (``torch-lucent``) as a benchmark anchor, installed for the benchmark only.

lucent pins ``kornia<=0.4.1`` (which does not import on current torch) and imports IPython for
notebook display, so it is never a dependency of the package. Set-up, once, into an ignored
folder (``build/`` is in .gitignore)::

    pip install --no-deps --target build/bench-lucent torch-lucent==0.1.8 kornia kornia-rs

:func:`import_lucent` puts that folder on ``sys.path`` (or ``$ISIC_BENCH_LUCENT``), gives
current kornia the two top-level names lucent 0.1.8 calls (``kornia.get_rotation_matrix2d``
and ``kornia.warp_affine``, now under ``kornia.geometry.transform``, same functions) and, only
when IPython is missing, an empty ``IPython.display`` for the time of lucent's own import only
(lucent uses it to show images in a notebook, never here). Nothing of that stays in
``sys.modules`` or ``sys.path`` for other code: an ``IPython`` stub left there breaks
matplotlib, which reads ``IPython.version_info`` whenever it makes a figure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isic_tracking.interpret.hooks import frozen_eval

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "build" / "bench-lucent"
SETUP = "pip install --no-deps --target build/bench-lucent torch-lucent==0.1.8 kornia kornia-rs"

OnStep = Callable[[int, Callable[[], torch.Tensor]], None]


def import_lucent() -> types.ModuleType:
    """``lucent.optvis``, importable without its pinned kornia or IPython; a clear error with
    the set-up command when it is not installed. ``sys.modules`` keeps no IPython stub and
    ``sys.path`` no bench folder afterwards (lucent's modules, once imported, keep theirs)."""
    path = os.environ.get("ISIC_BENCH_LUCENT", str(DEFAULT_PATH))
    with _on_path(path), _ipython_display_stub():
        try:
            import kornia
            from kornia.geometry import transform as kt
        except ImportError as err:
            raise SystemExit(f"lucent's kornia is missing: run `{SETUP}` ({err})") from err
        for name in ("get_rotation_matrix2d", "warp_affine"):
            if not hasattr(kornia, name):
                setattr(kornia, name, getattr(kt, name))
        try:
            from lucent import optvis
            from lucent.optvis import objectives, param, render  # noqa: F401
        except ImportError as err:
            raise SystemExit(
                f"lucent is not installed for the bench: run `{SETUP}` ({err})"
            ) from err
    return optvis


@contextlib.contextmanager
def _on_path(path: str) -> Iterator[None]:
    """``path`` first on ``sys.path`` while the block runs, then ``sys.path`` as it was."""
    before = list(sys.path)
    sys.path.insert(0, path)
    try:
        yield
    finally:
        sys.path[:] = before


@contextlib.contextmanager
def _ipython_display_stub() -> Iterator[None]:
    """An empty ``IPython.display`` in ``sys.modules`` while the block runs, only where IPython
    is not installed; removed afterwards, so later imports of IPython fail as they should."""
    if importlib.util.find_spec("IPython") is not None:
        yield
        return
    stub = types.ModuleType("IPython")
    stub.display = types.ModuleType("IPython.display")
    names = {"IPython": stub, "IPython.display": stub.display}
    sys.modules.update(names)
    try:
        yield
    finally:
        for name, module in names.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


@contextlib.contextmanager
def _no_hooks_left(model: nn.Module) -> Iterator[None]:
    """lucent's ``render_vis`` hooks every module and never removes the hooks (they would keep
    every layer's output alive and slow every later forward, also other engines'): remove
    the forward hooks added during the render."""
    before = {id(m): set(m._forward_hooks) for m in model.modules()}
    try:
        yield
    finally:
        for m in model.modules():
            for key in set(m._forward_hooks) - before.get(id(m), set()):
                del m._forward_hooks[key]


def render_lucent(
    model: nn.Module,
    layer: str,
    channels: Sequence[int],
    size: int = 224,
    steps: int = 120,
    seed: int = 0,
    on_step: OnStep | None = None,
) -> torch.Tensor:
    """One ``render_vis`` with one batch objective per channel (fft + decorrelate, lucent's
    standard transforms, Adam 0.05, ImageNet normalization), weights frozen; the final images
    ``[B, 3, size, size]``."""
    optvis = import_lucent()
    objectives, param, render = optvis.objectives, optvis.param, optvis.render
    lucent_layer = layer.replace(".", "_")
    objective = sum(objectives.channel(lucent_layer, ch, batch=i) for i, ch in enumerate(channels))
    holder: dict[str, Callable[[], torch.Tensor]] = {}

    def param_f():
        params, image_f = param.image(size, batch=len(channels), fft=True, decorrelate=True)
        holder["image_f"] = image_f
        return params, image_f

    class TrackedAdam(torch.optim.Adam):
        done = 0

        def step(self, closure=None):
            loss = super().step(closure)
            TrackedAdam.done += 1
            if on_step is not None:
                on_step(TrackedAdam.done, lambda: holder["image_f"]().detach())
            return loss

    random.seed(seed)
    np.random.seed(seed)
    with frozen_eval(model), _no_hooks_left(model), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        render.render_vis(
            model, objective, param_f, optimizer=lambda p: TrackedAdam(p, lr=5e-2),
            thresholds=(steps,), progress=False, show_image=False,
        )  # fmt: skip
        with torch.no_grad():
            return holder["image_f"]().detach().float().cpu()
