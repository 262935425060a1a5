"""The MLflow side of the sanity stage's pictures: a ``visualize`` run's pictures read back
(:func:`read_visualize_run`), and the per-layer verdict: what :mod:`.per_layer` computes for
every pictured layer's top filters, logged into the active sanity run.

Logs ``tables/verdict_per_layer.csv`` (one row per pictured layer: its verdict at its own
layer, ``closer_layers`` of ``path_layers``), ``tables/verdict_per_layer_path.csv`` (every
pictured layer at every path layer), ``figures/verdict_per_layer.png``, the metrics of
:func:`.per_layer.layer_metrics` with the layer's depth as step, and the tag
``isic.sanity.pictured_layer_verdicts``. The deepest layer's main verdict keeps its own names
(``fv_minus_noise/<layer>``, ``isic.sanity.verdict``).
"""

from __future__ import annotations

from collections.abc import Sequence

import mlflow
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor, nn

from isic_tracking.interpret.fv_table import ARTIFACT, read_activations
from isic_tracking.interpret.versus_noise import one_level
from isic_tracking.stages.sanity.per_layer import (
    layer_metrics,
    layer_verdicts,
    own_layer,
    picture_vectors,
)
from isic_tracking.stages.sanity.pictures import LayerPictures
from isic_tracking.stages.sanity.plots_per_layer import plot_layer_verdicts
from isic_tracking.stages.sanity.sets import at_size, run_visualizations
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import (
    download_artifacts,
    log_dataframe,
    log_figure,
    log_metrics,
)


def log_layer_verdicts(
    model: nn.Module,
    path: Sequence[str],
    natural: Tensor,
    natural_class: Tensor,
    noise: Tensor,
    pictures: Sequence[LayerPictures],
    *,
    metric: str,
    pooling: str,
    standardize: bool,
    n_boot: int,
    level: float,
    seed: int,
    **forward_kw,
) -> pd.DataFrame:
    """Compute and log the verdict of each pictured layer's pictures; returns the own-layer
    table (empty, nothing logged, without pictures)."""
    if not pictures:
        return pd.DataFrame()
    vectors = picture_vectors(
        model, path, natural, natural_class, noise, pictures,
        pooling=pooling, standardize=standardize, **forward_kw,
    )  # fmt: skip
    table = layer_verdicts(vectors, path, metric, n_boot=n_boot, level=level, seed=seed)
    own = own_layer(table)
    for values, step in layer_metrics(own):
        log_metrics(one_level(values), step=step)
    log_dataframe(own, "tables/verdict_per_layer.csv")
    log_dataframe(table, "tables/verdict_per_layer_path.csv")
    log_figure(plot_layer_verdicts(table, metric), "figures/verdict_per_layer.png")
    mlflow.set_tag(
        tag.SANITY_PICTURED_LAYER_VERDICTS,
        "; ".join(
            f"{r.layer}: {r.verdict} (closer at {r.closer_layers}/{r.path_layers} layers)"
            for r in own.itertuples()
        ),
    )
    return own


def read_visualize_run(run_id: str, classes: list[str], tmp: str) -> tuple[pd.DataFrame, Tensor]:
    """The visualizations of a ``visualize`` run: (table with kind/layer/channel/target/label,
    images ``[N, 3, S, S]`` in [0, 1]), from its ``tables/activations.csv`` and the PNGs it
    names (see :func:`.sets.run_visualizations` for which rows are kept)."""
    path = download_artifacts(run_id, ARTIFACT, tmp)
    table = read_activations(path, source=f"visualize run {run_id}: {ARTIFACT}")
    table = run_visualizations(table, classes, source=f"visualize run {run_id}")
    root = download_artifacts(run_id, "images", tmp).parent  # "file" is relative to the run
    imgs = []
    for f in table["file"].astype(str):
        with Image.open(root / f) as im:
            imgs.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    size = max(i.shape[0] for i in imgs)
    images = torch.cat([at_size(torch.tensor(i).permute(2, 0, 1)[None], size) for i in imgs])
    return table, images
