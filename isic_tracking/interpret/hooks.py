"""The one hook engine: record what chosen layers output in a forward, then stop the forward.

Activation statistics (:mod:`.activations`), path similarity (:mod:`.sanity`) and feature
visualization (:mod:`.featvis.render`) all record layers through :class:`LayerRecorder`,
so they share one set of rules:

- **Stop early.** Once every hooked layer has fired, the last hook raises
  :class:`StopForward`, which the recorder catches: the rest of the network (usually the
  head) never runs.
- **A module that runs twice** in one forward before it is stopped (a module shared inside
  the network, like the one ReLU of a torchvision ResNet block) is refused with
  :class:`IsicInputError`: keeping either of its outputs would silently describe a layer
  that is not the one asked for. Hook a module that runs once (the conv or norm before it).
  A second call *after* the stop never happens, so a shared module that is the deepest one
  asked for (or fires before the rest of the forward is cut) is fine.
- **Cloning.** What a layer keeps is ``keep(name, output)``, computed inside the hook
  (default: the output itself). A kept tensor that shares memory with the module's output is
  cloned unless it is the last layer to fire, so that an in-place op further on
  (``ReLU(inplace=True)``) cannot change it; nothing runs after the last one. Reductions
  computed in ``keep`` (a max, a mean) are new tensors and are never copied.
- **Missing layers.** A hooked layer that did not run raises :class:`IsicInputError`.
- **No hook left behind.** Hooks are added on ``__enter__`` and removed on ``__exit__``,
  also when the forward raises; :func:`eval_mode` and :func:`frozen_eval` restore the
  model's mode (and weight flags).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from isic_tracking.errors import IsicInputError
from isic_tracking.models import get_layer

Keep = Callable[[str, Tensor], Any]


class StopForward(Exception):
    """Raised by the last hook to fire: the rest of the network is not needed."""


def _keep_output(_name: str, out: Tensor) -> Tensor:
    return out


def _shares_memory(value: Any, out: Tensor) -> bool:
    return isinstance(value, Tensor) and (
        value.untyped_storage().data_ptr() == out.untyped_storage().data_ptr()
    )


class LayerRecorder:
    """Forward hooks on ``layers`` (qualified module names, ``""`` is the model's output).

    ``recorder(x)`` runs one forward and returns ``{layer: keep(layer, output)}`` in the order
    of ``layers``; see the module docstring for the rules. Use as a context manager.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], keep: Keep | None = None) -> None:
        self.model = model
        self.layers = tuple(dict.fromkeys(layers))
        self.modules = [get_layer(model, name) for name in self.layers]  # IsicInputError if unknown
        self.keep = keep or _keep_output
        self.kept: dict[str, Any] = {}
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> LayerRecorder:
        for name, module in zip(self.layers, self.modules):
            self._handles.append(module.register_forward_hook(partial(self._hook, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str, _module: nn.Module, _inputs: Any, output: Any) -> None:
        if name in self.kept:
            raise IsicInputError(
                f"layer {name!r} runs more than once per forward (a shared module); "
                "hook a module that runs once"
            )
        out = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(out, Tensor):
            raise IsicInputError(f"layer {name!r} does not output a tensor")
        value = self.keep(name, out)
        last = len(self.kept) == len(self.layers) - 1
        self.kept[name] = value.clone() if not last and _shares_memory(value, out) else value
        if last:
            raise StopForward

    def __call__(self, x: Tensor) -> dict[str, Any]:
        self.kept = {}
        try:
            self.model(x)
        except StopForward:
            pass
        missing = [n for n in self.layers if n not in self.kept]
        if missing:
            raise IsicInputError(f"layers {missing} did not run in the forward pass")
        return {n: self.kept[n] for n in self.layers}


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode inside (for recording under ``no_grad``); the previous mode comes back after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def frozen_eval(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no weight gradients inside (for optimizing an input with autograd); the
    previous mode and flags come back after."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        with eval_mode(model):
            yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
