"""The names a user can choose between in the analysis stages (presets, engines, poolings,
similarity metrics): light constants, so building the command line needs no torch. The
modules that implement them import these names, and a test checks both agree."""

from __future__ import annotations

#: feature-visualization presets (:data:`isic_tracking.interpret.featvis.presets.PRESETS`)
PRESET_NAMES: tuple[str, ...] = ("tuned", "thesis", "none", "fourier", "maco")
#: feature-visualization engines: this project's renderer, or torch-dreams
ENGINES: tuple[str, ...] = ("isic", "torch_dreams")
#: how a layer's activation map becomes one vector (sanity metrics)
POOLINGS: tuple[str, ...] = ("mean", "max", "flatten")
#: similarity between activation vectors (sanity metrics)
METRICS: tuple[str, ...] = ("spearman", "pearson", "cosine")
#: colour basis of the ``tuned`` preset (:func:`isic_tracking.interpret.featvis.presets.resolve_colours`)
COLOUR_CHOICES: tuple[str, ...] = ("data", "imagenet")
COLOURS_HELP = (
    "colour basis of the tuned preset: data (fitted to the analysed natural images: pictures "
    "start at their mean colour and move along their colour axes) or imagenet (lucid's)"
)
#: bfloat16 autocast while rendering (``render(amp=...)``: None, True, False), in the train
#: stage's words (``auto``, ``bf16``, ``none``); ``on``/``off`` are the older spellings, still
#: read (deprecated, to be removed after 2027-06-30)
AMP_CHOICES: dict[str, bool | None] = {
    "auto": None, "bf16": True, "none": False, "on": True, "off": False,
}  # fmt: skip
