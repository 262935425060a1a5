"""Which pictures of one layer the sanity verdict compares: the layer's top channels, ``top_k``
per class, each assigned the class it is most selective for (thesis §5.4.2: the top filters of
every pictured layer, Figs. 33-35).

From a ``visualize`` run the layer's channel pictures are narrowed (:func:`run_layer_pictures`);
rendered here, the layer's most class-selective channels are chosen first
(:func:`layer_objectives`) and the runner renders them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from isic_tracking.interpret import sanity as S
from isic_tracking.stages.sanity.sets import (
    channel_classes,
    class_selective_channels,
    objective_table,
    select_top,
)


@dataclass
class LayerPictures:
    """The compared pictures of one layer's top channels."""

    layer: str
    table: pd.DataFrame  # kind, layer, channel, target, label, ... one row per image
    images: Tensor  # [V, 3, S, S] in [0, 1]

    @property
    def target(self) -> Tensor:
        return torch.tensor(self.table["target"].to_numpy(dtype="int64"))


def run_layer_pictures(
    model: nn.Module,
    table: pd.DataFrame,
    layer: str,
    natural: Tensor,
    natural_class: Tensor,
    classes: Sequence[str],
    top_k: int,
    forward_kw: Mapping[str, Any],
) -> tuple[pd.DataFrame, Tensor]:
    """A visualize run's channel pictures of ``layer``: the ``top_k`` per class (by the
    activation they reached), each with the class its channel is most selective for on the
    natural images. Returns (their rows, with ``target`` and ``label``; their positions in
    ``table``)."""
    keep = ((table["kind"] == "channel") & (table["layer"] == layer)).to_numpy()
    rows = table[keep].reset_index(drop=True)
    acts = S.activation_vectors(model, natural, [layer], pooling="mean", **forward_kw)
    chans = torch.tensor(rows["channel"].to_numpy(dtype="int64"))
    rows["target"] = channel_classes(acts[layer], natural_class, chans, len(classes)).numpy()
    rows["label"] = [f"{r.label} ({classes[r.target]})" for r in rows.itertuples()]
    top = select_top(rows, k=top_k).index.to_numpy()
    return rows.loc[top].reset_index(drop=True), torch.tensor(np.flatnonzero(keep)[top])


def layer_objectives(
    model: nn.Module,
    layer: str,
    natural: Tensor,
    natural_class: Tensor,
    classes: Sequence[str],
    num_outputs: int,
    top_k: int,
    forward_kw: Mapping[str, Any],
) -> pd.DataFrame:
    """What to render for ``layer``: its ``top_k`` most class-selective channels per class
    (channel rows of :func:`~isic_tracking.stages.sanity.sets.objective_table`)."""
    acts = S.activation_vectors(model, natural, [layer], pooling="mean", **forward_kw)
    chans = class_selective_channels(acts[layer], natural_class, top_k, len(classes))
    table = objective_table(list(classes), num_outputs, layer, chans)
    return table[table["kind"] == "channel"].reset_index(drop=True)
