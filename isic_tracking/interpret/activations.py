"""Streaming activation statistics: per layer, filter and image, the max and mean activation.

The thesis (§5.4.1) collected every feature map of a layer for the whole data set and then
reduced it; memory grew with images x filters x height x width. Here a forward hook reduces
each feature map to a few numbers per filter *inside the forward pass* and moves only those
to the CPU, so memory grows with images x filters and never with the feature maps
(``bench/activations.py`` measures both).

Values are the hooked module's output as is: for a ``Conv2d`` that is the pre-activation.
Since ReLU is monotone the per-image max, its location and every quantile ranking built
on it are the same as after the ReLU, without the ties at zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.hooks import LayerRecorder, eval_mode
from isic_tracking.interpret.row_blocks import BLOCK_ROWS, RowBlocks, expected_rows
from isic_tracking.models import conv_layers
from isic_tracking.utils import progress

REDUCTIONS: tuple[str, ...] = ("max", "mean", "argmax")


@dataclass
class LayerStats:
    """Per-image, per-filter statistics of one layer over a data set (all tensors on the CPU).

    Attributes:
        name: qualified layer name (``features.28``).
        max: ``[N, C]`` float32, max over the spatial positions of each filter's map (None
            only when ``reduce`` asked for neither max nor argmax).
        mean: ``[N, C]`` float32 spatial mean, or None when not requested.
        argmax: ``[N, C]`` int32 flat position (``y * W + x``) of the max in the feature map,
            or None when not requested; see :meth:`location`.
        fmap_size: ``(H, W)`` of the layer's feature map.
        input_size: ``(H, W)`` of the images fed to the model.
        indices: ``[N]`` int64 data-set index of each row (from the loader, else 0..N-1).
        labels: ``[N]`` int64 labels from the loader, or None when it yields none.
    """

    name: str
    max: Tensor | None
    mean: Tensor | None
    argmax: Tensor | None
    fmap_size: tuple[int, int]
    input_size: tuple[int, int]
    indices: Tensor
    labels: Tensor | None = None

    @property
    def num_images(self) -> int:
        return int(self.indices.shape[0])

    @property
    def num_filters(self) -> int:
        t = self.max if self.max is not None else self.mean
        return int(t.shape[1])

    def location(self, row: int, filt: int) -> tuple[int, int]:
        """Feature-map position ``(y, x)`` of the max of filter ``filt`` in image row ``row``."""
        if self.argmax is None:
            raise IsicInputError("argmax was not recorded: pass reduce including 'argmax'")
        flat = int(self.argmax[row, filt])
        return divmod(flat, self.fmap_size[1])


@dataclass
class _Collector:
    """The reduced tables of one layer, batch after batch (the recorder's ``keep`` for it)."""

    name: str
    reduce: tuple[str, ...]
    block_rows: int = BLOCK_ROWS
    tables: dict[str, RowBlocks] = field(default_factory=dict)
    fmap_size: tuple[int, int] | None = None

    def reduce_output(self, out: Tensor) -> dict[str, Tensor]:
        """``[B, C]`` max / argmax / mean of a feature map, computed inside the hook."""
        if out.dim() == 2:  # Linear-like [B, C]: a 1x1 "feature map"
            out = out[:, :, None, None]
        if out.dim() != 4:
            raise IsicInputError(
                f"layer {self.name!r} outputs shape {tuple(out.shape)}; expected [B, C, H, W] "
                "(a conv layer) or [B, C]"
            )
        size = (int(out.shape[2]), int(out.shape[3]))
        if self.fmap_size is None:
            self.fmap_size = size
        elif size != self.fmap_size:
            raise IsicInputError(
                f"layer {self.name!r} feature map changed size from {self.fmap_size} to {size}: "
                "feed images of one size (use the eval transforms)"
            )
        flat = out.detach().flatten(2)  # [B, C, H*W], a view
        kept: dict[str, Tensor] = {}
        if "max" in self.reduce or "argmax" in self.reduce:
            values, where = flat.max(dim=2)
            kept["max"] = values.float().cpu()
            if "argmax" in self.reduce:
                kept["argmax"] = where.to(torch.int32).cpu()
        if "mean" in self.reduce:
            kept["mean"] = flat.float().mean(dim=2).cpu()
        return kept

    def add(self, kept: dict[str, Tensor]) -> None:
        for key, value in kept.items():
            self.tables.setdefault(key, RowBlocks(self.block_rows)).add(value)

    def joined(self, key: str) -> Tensor | None:
        """The ``[N, C]`` table of ``key`` (None when it was not recorded)."""
        table = self.tables.pop(key, None)
        return None if table is None else table.joined()


def _unpack(batch) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``x``, ``(x, y)``, ``(x, y, idx)`` or a dict with image/label/index keys."""
    if isinstance(batch, Tensor):
        return batch, None, None
    if isinstance(batch, dict):
        x = batch.get("image", batch.get("x"))
        y = batch.get("label", batch.get("y"))
        idx = batch.get("index", batch.get("idx"))
        if x is None:
            raise IsicInputError(f"batch dict has no 'image' key: keys are {sorted(batch)}")
        return x, y, idx
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        items = list(batch) + [None] * (3 - len(batch))
        return items[0], items[1], items[2]
    raise IsicInputError(
        f"loader yields {type(batch).__name__}; expected x, (x, y) or (x, y, idx) batches"
    )


def _as_long(v, n: int, what: str) -> Tensor:
    t = torch.as_tensor(v).reshape(-1).long().cpu()
    if t.numel() != n:
        raise IsicInputError(f"batch has {n} images but {t.numel()} {what}")
    return t


def activation_stats(
    model: nn.Module,
    loader: Iterable,
    layers: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    *,
    reduce: Sequence[str] = REDUCTIONS,
) -> dict[str, LayerStats]:
    """Per-layer, per-filter, per-image activation statistics in one pass over ``loader``.

    Forward hooks on ``layers`` reduce each feature map inside the forward (max over space,
    its location, mean) and keep only those ``[B, C]`` numbers on the CPU. Once every hooked
    layer has fired the forward is stopped (the head is never computed); a layer that runs
    twice per forward is refused (the rules of :mod:`.hooks`). Runs under
    :func:`torch.inference_mode` with the model in eval mode; the model's training flag is
    restored and every hook removed afterwards, also when the forward raises.

    Args:
        model: any ``nn.Module``; moved to ``device``.
        loader: iterable of ``x``, ``(x, y)`` or ``(x, y, idx)`` batches of normalized images
            of one size (e.g. :func:`isic_tracking.data.dataset.make_loader`).
        layers: qualified module names (default: every conv layer, ``conv_layers(model)``).
            A name that does not exist raises :class:`IsicInputError` listing the conv layers.
        device: where the forward runs.
        reduce: any of ``"max"``, ``"mean"``, ``"argmax"`` (default all).

    Returns:
        ``{layer name: LayerStats}`` in the order of ``layers``.
    """
    reduce = tuple(reduce)
    bad = [r for r in reduce if r not in REDUCTIONS]
    if bad or not reduce:
        raise IsicInputError(f"unknown reduce {bad or reduce}; choose from {REDUCTIONS}")
    names = list(dict.fromkeys(layers)) if layers else conv_layers(model)
    if not names:
        raise IsicInputError(f"{type(model).__name__} has no conv layer to hook; pass layers")
    device = torch.device(device)
    rows = expected_rows(loader)
    collectors = {n: _Collector(n, reduce, rows) for n in names}
    labels: list[Tensor] = []
    indices: list[Tensor] = []
    input_size: tuple[int, int] | None = None
    seen = 0
    model.to(device)
    recorder = LayerRecorder(model, names, lambda n, out: collectors[n].reduce_output(out))
    with eval_mode(model), recorder, torch.inference_mode():
        for batch in progress(loader, desc="activations"):
            x, y, idx = _unpack(batch)
            b = int(x.shape[0])
            input_size = input_size or (int(x.shape[-2]), int(x.shape[-1]))
            for n, kept in recorder(x.to(device, non_blocking=True)).items():
                collectors[n].add(kept)
            if y is not None:
                labels.append(_as_long(y, b, "labels"))
            idx_t = torch.arange(seen, seen + b) if idx is None else _as_long(idx, b, "ids")
            indices.append(idx_t)
            seen += b

    if seen == 0:
        raise IsicInputError("the loader yielded no images: is the split empty?")
    # labels only when every batch carried them
    all_labels = torch.cat(labels) if sum(map(len, labels)) == seen else None
    all_indices = torch.cat(indices)
    out: dict[str, LayerStats] = {}
    for n, c in collectors.items():
        out[n] = LayerStats(
            name=n,
            max=c.joined("max"),
            mean=c.joined("mean"),
            argmax=c.joined("argmax"),
            fmap_size=c.fmap_size,
            input_size=input_size,
            indices=all_indices,
            labels=all_labels,
        )
    return out
