"""Feature visualization by activation maximization (thesis §4.4, §5.4.1).

Lucent's split, batched: parameterizations (:mod:`.param`), random transforms
(:mod:`.transforms`), image priors (:mod:`.regularizers`), objectives (:mod:`.objectives`) and a
render loop (:mod:`.render`) that optimizes one image per target in a single forward pass.
:mod:`.dreams` renders the same request with torch-dreams, :mod:`.grids` draws labelled grids.
"""

from isic_tracking.interpret.featvis.dreams import render_torch_dreams
from isic_tracking.interpret.featvis.metrics import pattern_correlation
from isic_tracking.interpret.featvis.objectives import (
    LOGITS,
    Objective,
    channel,
    channels,
    class_logit,
    layer,
    neuron,
)
from isic_tracking.interpret.featvis.param import fourier_image, maco_image, pixel_image
from isic_tracking.interpret.featvis.presets import PRESETS, preset
from isic_tracking.interpret.featvis.regularizers import (
    Regularizer,
    bilateral,
    blur,
    l1,
    total_variation,
)
from isic_tracking.interpret.featvis.render import RenderResult, check_request, evaluate, render
from isic_tracking.interpret.featvis.transforms import compose, random_affine, thesis_transforms

__all__ = [
    "LOGITS",
    "PRESETS",
    "Objective",
    "Regularizer",
    "RenderResult",
    "bilateral",
    "blur",
    "channel",
    "channels",
    "check_request",
    "class_logit",
    "compose",
    "evaluate",
    "fourier_image",
    "l1",
    "layer",
    "maco_image",
    "neuron",
    "pattern_correlation",
    "pixel_image",
    "preset",
    "random_affine",
    "render",
    "render_torch_dreams",
    "thesis_transforms",
    "total_variation",
]
