"""What to maximize: small composable objectives, evaluated per batch element.

An :class:`Objective` maps the recorded activations (``{layer name: Tensor}``) to the value to
MAXIMIZE for each batch element, ``Tensor[B]``. Targets may differ per element: ``channel(layer,
[3, 17, 42])`` makes image 0 maximize channel 3, image 1 channel 17, ... with one tensor-indexed
gather, so B different channels render in one forward pass.

Objectives combine with ``+``, ``-`` and ``*`` (scalar) and keep a readable ``name``
(lucent's objectives, without their global state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from isic_tracking.errors import IsicInputError

Activations = dict[str, Tensor]

#: Layer name of the model's own output (the root module): class-logit objectives hook it.
LOGITS = ""


def _layer_label(layer: str) -> str:
    return layer or "logits"


class Objective:
    """A per-element objective: ``objective(activations) -> Tensor[B]`` (higher is better).

    Args:
        fn: computes the values from the activations of ``layers``.
        name: readable name, e.g. ``channel(features.10, 3)``.
        layers: names of the modules whose outputs ``fn`` reads (``""`` is the model output).
        batch: number of per-element targets, or None when the objective fits any batch size.
        labels: one short label per element (for picture grids), when ``batch`` is set.
        reads: ``{layer: channels}`` when ``fn`` reads nothing of ``layer`` but those channels
            (one per element, or one for all): the render may then compute only them
            (:func:`~.fastpath.compute_target_channels`). None (anything may be read) after ``+``/``*``.
    """

    def __init__(
        self,
        fn: Callable[[Activations], Tensor],
        name: str,
        layers: Sequence[str],
        batch: int | None = None,
        labels: Sequence[str] | None = None,
        reads: dict[str, list[int]] | None = None,
    ) -> None:
        self.fn = fn
        self.reads = reads
        self.name = name
        self.layers = tuple(dict.fromkeys(layers))
        self.batch = batch
        self.labels = list(labels) if labels is not None else None

    def __call__(self, acts: Activations) -> Tensor:
        return self.fn(acts)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def element_labels(self, batch: int) -> list[str]:
        """A label per batch element (the objective's name when it has no per-element targets)."""
        return self.labels if self.labels is not None else [self.name] * batch

    def _combine(self, other: Objective, op: Callable, sign: str) -> Objective:
        if self.batch is not None and other.batch is not None and self.batch != other.batch:
            raise ValueError(
                f"cannot combine {self.name} ({self.batch} targets) with {other.name} "
                f"({other.batch} targets)"
            )
        batch = self.batch if self.batch is not None else other.batch
        labels = None
        if self.labels is not None or other.labels is not None:
            a, b = self.element_labels(batch), other.element_labels(batch)
            labels = [f"{x} {sign} {y}" for x, y in zip(a, b)]
        return Objective(
            lambda acts: op(self(acts), other(acts)),
            f"{self.name} {sign} {other.name}",
            self.layers + other.layers,
            batch,
            labels,
        )

    def __add__(self, other: Objective | float) -> Objective:
        if not isinstance(other, Objective):
            if other == 0:  # so that sum([...]) works
                return self
            return NotImplemented
        return self._combine(other, lambda a, b: a + b, "+")

    __radd__ = __add__

    def __sub__(self, other: Objective) -> Objective:
        return self._combine(other, lambda a, b: a - b, "-")

    def __mul__(self, factor: float) -> Objective:
        if isinstance(factor, Objective):
            return NotImplemented
        f = float(factor)
        labels = [f"{f:g}*{x}" for x in self.labels] if self.labels is not None else None
        return Objective(
            lambda acts: f * self(acts), f"{f:g}*({self.name})", self.layers, self.batch, labels
        )

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0


class _Index:
    """Per-element target indices, copied once to each device they are used on."""

    def __init__(self, idx: Tensor) -> None:
        self.cpu = idx
        self.on: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def rows_cols(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self.on:
            cols = self.cpu.to(device)
            self.on[device] = (torch.arange(len(cols), device=device), cols)
        return self.on[device]


def _targets(n: int | Sequence[int] | Tensor) -> tuple[_Index | None, list[int]]:
    """(per-element indices, or None for one shared int; the indices as ints)."""
    if isinstance(n, Tensor) and n.ndim == 0 or isinstance(n, int):
        return None, [int(n)]
    ints = [int(v) for v in (n.tolist() if isinstance(n, Tensor) else n)]
    return _Index(torch.tensor(ints, dtype=torch.long)), ints


def _check_range(layer: str, indices: list[int], size: int, what: str = "channel") -> None:
    bad = [i for i in indices if not 0 <= i < size]
    if bad:
        raise IsicInputError(
            f"{what} {bad[0]} is out of range for layer {_layer_label(layer)!r}, which has "
            f"{size} {what}s: use 0..{size - 1}"
        )


def _gather(act: Tensor, idx: _Index | None, ints: list[int]) -> Tensor:
    """``act[:, n]`` for a shared index, ``act[arange(B), idx]`` for per-element indices."""
    if idx is None:
        return act[:, ints[0]]
    rows, cols = idx.rows_cols(act.device)
    return act[rows, cols]


def _spec(ints: list[int]) -> str:
    return str(ints[0]) if len(ints) == 1 else f"[{', '.join(map(str, ints))}]"


def channel(layer: str, n: int | Sequence[int] | Tensor) -> Objective:
    """Mean activation of channel ``n`` of ``layer`` (Olah et al. 2017).

    Args:
        layer: module name (e.g. ``features.10``).
        n: one channel for every image, or one channel per image (list / ``Tensor[B]``).
    """
    idx, ints = _targets(n)

    def fn(acts: Activations) -> Tensor:
        act = acts[layer]
        _check_range(layer, ints, act.shape[1])
        values = _gather(act, idx, ints).float()  # gather first: under AMP only B maps upcast
        return values.flatten(1).mean(1) if values.ndim > 1 else values

    labels = [f"{layer}:{i}" for i in ints] if idx is not None else None
    name = f"channel({layer}, {_spec(ints)})"
    return Objective(fn, name, [layer], _batch(idx), labels, reads={layer: ints})


def channels(layer: str, idx: Sequence[int] | Tensor) -> Objective:
    """Channel ``idx[b]`` for image ``b``: :func:`channel` with one target per batch element."""
    return channel(layer, list(idx.tolist()) if isinstance(idx, Tensor) else list(idx))


def _batch(idx: _Index | None) -> int | None:
    return None if idx is None else len(idx.cpu)


def neuron(
    layer: str, n: int | Sequence[int] | Tensor, x: int | None = None, y: int | None = None
) -> Objective:
    """Activation of channel ``n`` at one spatial position (default: the centre).

    Args:
        layer: module name.
        n: one channel for every image or one per image.
        x, y: column and row in the layer's output; None = the centre.
    """
    idx, ints = _targets(n)

    def fn(acts: Activations) -> Tensor:
        act = acts[layer]
        _check_range(layer, ints, act.shape[1])
        h, w = act.shape[-2:]
        yy, xx = h // 2 if y is None else y, w // 2 if x is None else x
        _check_range(layer, [yy], h, "row")
        _check_range(layer, [xx], w, "column")
        return _gather(act, idx, ints)[:, yy, xx].float()

    pos = "centre" if x is None and y is None else f"x={x}, y={y}"
    labels = [f"{layer}:{i}@{pos}" for i in ints] if idx is not None else None
    return Objective(fn, f"neuron({layer}, {_spec(ints)}, {pos})", [layer], _batch(idx), labels)


def layer(name: str) -> Objective:
    """DeepDream: mean squared activation of the whole layer (Mordvintsev et al. 2015)."""

    def fn(acts: Activations) -> Tensor:
        return (acts[name].float() ** 2).flatten(1).mean(1)

    return Objective(fn, f"layer({name})", [name])


def class_logit(n: int | Sequence[int] | Tensor) -> Objective:
    """The model's output logit ``n`` (class-model visualization, Simonyan et al. 2014).

    With one logit (the binary task) ``n=0`` is the malignant logit; ``-class_logit(0)`` the
    benign direction.
    """
    idx, ints = _targets(n)

    def fn(acts: Activations) -> Tensor:
        out = acts[LOGITS]
        _check_range(LOGITS, ints, out.shape[1], "logit")
        return _gather(out, idx, ints).float()

    labels = [f"logit {i}" for i in ints] if idx is not None else None
    return Objective(fn, f"class_logit({_spec(ints)})", [LOGITS], _batch(idx), labels)
