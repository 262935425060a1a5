"""The ``main`` pipeline's profiles: every stage's settings for one scale of run.

``demo``: synthetic data, minutes on 2 CPU cores, a model that learns the planted cues
(README, "The demo profile"). ``tiny``: every stage in seconds, for the end-to-end tests.
``full``: the thesis's real-data scale (5 folds, 10 % search subset), for a GPU.
``main.arch`` is the default of ``-P arch``, ``main.init`` of ``-P init`` (``pretrain``: the
offline base the ``pretrain`` stage trains first); ``thesis.archs`` the grid of ``-e thesis``.
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {
        # init "pretrain": the offline base of the pretrain stage (fractal categories)
        "main": {"arch": "smallcnn", "init": "pretrain"},
        "pretrain": {"n_classes": 32, "per_class": 50, "image_size": 64, "epochs": 6},
        "thesis": {"archs": ["smallcnn", "timm:resnet10t"]},
        "synth": {"n_images": 240, "image_size": 128},
        # test set: the data's own (synthetic binary: its ISIC 2016 part), else 15 % held out
        "prepare": {"image_size": 128, "test_fraction": 0.15},
        "search": {
            "n_trials": 6,
            "subset": 0.5,
            "epochs_min": 8,
            "epochs_max": 12,
            "lr_min": 1e-3,
            "lr_max": 5e-3,
            "batch_sizes": "16,32",
            "image_size": 64,
            "augment": "flips",
            "monitor": "val_loss",
            "pruner_startup_trials": 2,
            "pruner_warmup_epochs": 2,
        },
        "train": {
            "folds": 3,
            "epochs": 10,
            "image_size": 64,
            "augment": "flips",
            "min_best_epoch": 4,
            "best_decimals": 2,
        },
        "evaluate": {"n_resamples": 1000},
        "layers": {"layers": "all", "top_k": 5, "n_boot": 500, "fv_steps": 32},
        "filters": {"layers": "last", "top_n": 5, "ablate_k": 2, "ablate_draws": 20},
        # with and without regularization side by side (the thesis's Fig. 29)
        "visualize": {
            "layers": "first,last",
            "top_n": 3,
            "steps": 64,
            "image_size": 96,
            "regularization": "tuned,none",
        },
        # rendered at visualize's size, so its pictures and sanity's class-logit ones stack
        "sanity": {
            "n_images": 12,
            "steps": 32,
            "layers": "all",
            "image_size": 96,
            "fit_n_images": True,
        },
    },
    # end-to-end tests: every stage, seconds each
    "tiny": {
        "main": {"arch": "timm:test_resnet", "init": "pretrain"},
        "pretrain": {"n_classes": 4, "per_class": 8, "image_size": 32, "epochs": 1},
        "thesis": {"archs": ["timm:test_resnet", "smallcnn"]},
        "synth": {"n_images": 64, "image_size": 48},
        "prepare": {"image_size": 48, "test_fraction": 0.2},
        "search": {
            "n_trials": 2,
            # every training row: after its held-out test set the multiclass set has 5-7
            # images per class, and a smaller subset leaves a class out of the holdout
            "subset": 1.0,
            "epochs_min": 1,
            "epochs_max": 1,
            "lr_min": 1e-3,
            "lr_max": 3e-3,
            "batch_sizes": "16",
            "image_size": 32,
        },
        "train": {"folds": 2, "epochs": 3, "image_size": 48},
        "evaluate": {"n_resamples": 100},
        "layers": {"layers": "all", "top_k": 2, "n_boot": 20, "fv_steps": 2},
        "filters": {"layers": "last", "top_n": 3, "image_size": 48, "ablate_draws": 5},
        "visualize": {"layers": "first,last", "top_n": 2, "steps": 6, "image_size": 48},
        "sanity": {
            "n_images": 4,
            "steps": 6,
            "layers": "all",
            "image_size": 48,
            "fit_n_images": True,
        },
    },
    "full": {
        # ImageNet weights: `weights`/`init` (a file, a torch-cache folder, arch=path pairs),
        # else the torch cache
        "main": {"arch": "alexnet", "init": "imagenet"},
        "pretrain": {"image_size": 224, "n_classes": 100, "per_class": 100, "epochs": 20},
        "thesis": {"archs": ["alexnet", "vgg16", "resnet50"]},
        "synth": {},
        "prepare": {"image_size": 256, "test_fraction": 0.15},
        "search": {"n_trials": 30, "subset": 0.1},
        "train": {"folds": 5, "epochs": 30, "image_size": 224},
        "evaluate": {"n_resamples": 2000},
        "layers": {"layers": "all", "top_k": 5, "n_boot": 1000, "fv_steps": 64},
        "filters": {"layers": "all", "top_n": 5, "ablate_k": 3, "ablate_draws": 50},
        "visualize": {
            "layers": "first,last",
            "top_n": 5,
            "steps": 200,
            "image_size": 224,
            "regularization": "tuned,none",
        },
        "sanity": {"n_images": 200, "steps": 200, "layers": "all", "fit_n_images": True},
    },
}
