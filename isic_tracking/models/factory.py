"""``create_model(arch, num_outputs, ...)`` over torchvision classifiers and any timm model.

Nothing is downloaded at run time: pretrained weights come from ``weights=PATH`` or from
the torch hub cache (``$TORCH_HOME/hub/checkpoints``); a missing file says where to put it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from isic_tracking.errors import IsicInputError
from isic_tracking.models.small_cnn import LOCAL_ARCHS

FREEZE_MODES = ("none", "features", "all_but_head")


@cache
def _torchvision_classifiers() -> tuple[str, ...]:
    return tuple(torchvision.models.list_models(module=torchvision.models))


@cache
def _timm_models() -> tuple[str, ...]:
    import timm

    return tuple(timm.list_models())


def available_archs() -> list[str]:
    """Every name :func:`create_model` accepts: this package's own (``smallcnn``), torchvision,
    then timm as ``timm:<name>``."""
    return (
        list(LOCAL_ARCHS) + list(_torchvision_classifiers()) + [f"timm:{n}" for n in _timm_models()]
    )


def _split_arch(arch: str) -> tuple[str, str]:
    """('local'|'torchvision'|'timm', name); a bare name is local, torchvision, then timm."""
    if arch in LOCAL_ARCHS:
        return "local", arch
    if arch.startswith("timm:"):
        name = arch[5:]
        if name in _timm_models():
            return "timm", name
    elif arch in _torchvision_classifiers():
        return "torchvision", arch
    elif arch in _timm_models():
        return "timm", arch
    close = difflib.get_close_matches(
        arch.removeprefix("timm:"), available_archs(), n=5, cutoff=0.6
    )
    hint = f" Close names: {', '.join(close)}." if close else ""
    raise IsicInputError(
        f"unknown arch {arch!r}: not a torchvision classifier nor a timm model.{hint} "
        "List them with isic_tracking.models.available_archs()."
    )


def check_arch(arch: str, weights: str | os.PathLike | None = None) -> None:
    """Fail fast (before any run starts) on an unknown arch or a missing weights file."""
    _split_arch(arch)
    if weights is not None and not Path(weights).expanduser().is_file():
        raise IsicInputError(
            f"weights file {weights} for {arch!r} does not exist; put the ImageNet state dict "
            "there or drop `weights`."
        )


def _load_weights_file(model: nn.Module, weights: str | os.PathLike, arch: str) -> None:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise IsicInputError(
            f"weights file {path} for {arch!r} does not exist; put the ImageNet state dict "
            f"there (e.g. download once on a machine with network and copy it) or drop `weights`."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    # a head of another size (another task's, e.g. the pretrain stage's classes) keeps the
    # fresh init: drop keys whose shape differs, count them with the missing ones
    own = model.state_dict()
    resized = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in resized}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if len(missing) > 4 or len(unexpected) > 4 or len(resized) > 4:
        raise IsicInputError(
            f"weights file {path} does not fit {arch!r}: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(resized)} of another shape (e.g. {resized[:3]})"
        )


def _torchvision_cached(name: str) -> Any:
    """The default weights enum of a torchvision model, only if its file is in the torch cache."""
    w = torchvision.models.get_model_weights(name).DEFAULT
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name
    if not cached.is_file():
        raise IsicInputError(
            f"pretrained weights for {name!r} are not in the torch cache: expected {cached}. "
            f"No download at run time: copy {w.url} there, or pass weights=/path/to/file.pth."
        )
    return w


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise IsicInputError(f"{type(model).__name__} has no Linear head to replace")
    return linears[-1]


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


@contextmanager
def _hub_offline() -> Iterator[None]:
    """Make huggingface_hub answer from its cache only (no network retries at run time).

    Setting HF_HUB_OFFLINE after huggingface_hub was imported has no effect, so the
    module constant is switched for the duration of the call.
    """
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:  # timm without the hub: nothing to switch
        yield
        return
    old = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = old


def _freeze_up_to(model: nn.Module, layer: str) -> None:
    """Freeze every parameter up to and including ``layer``'s (registration order, which is
    the forward order of the torchvision, timm and local nets); the BatchNorms among them keep
    their running statistics too (momentum 0), so the frozen part computes what it did."""
    names = [n for n, _ in model.named_parameters()]
    last = [i for i, n in enumerate(names) if n.startswith(layer + ".")]
    if not last:
        layers = sorted({n.rsplit(".", 1)[0] for n in names})
        raise IsicInputError(
            f"freeze=upto:{layer}: no layer {layer!r} with weights; layers: {', '.join(layers)}"
        )
    frozen = set(names[: last[-1] + 1])
    for name, p in model.named_parameters():
        if name in frozen:
            p.requires_grad = False
    for name, m in model.named_modules():
        params = [f"{name}.{n}" for n, _ in m.named_parameters(recurse=False)]
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and params and set(params) <= frozen:
            m.momentum = 0.0


def _freeze(model: nn.Module, mode: str, head: str) -> None:
    if mode.startswith("upto:"):
        _freeze_up_to(model, mode.removeprefix("upto:"))
        return
    if mode not in FREEZE_MODES:
        raise IsicInputError(
            f"unknown freeze {mode!r}; choose one of {FREEZE_MODES} or upto:<layer>"
        )
    if mode == "none":
        return
    for name, p in model.named_parameters():
        in_head = name.startswith(head + ".")
        if mode == "all_but_head":
            p.requires_grad = in_head
        elif mode == "features":  # the convolutional trunk; classifier MLPs (VGG/AlexNet) train
            p.requires_grad = in_head or not (
                name.startswith("features.")
                or name.split(".")[0].startswith(
                    ("conv", "layer", "bn1", "stem", "stages", "blocks")
                )
            )


def create_model(
    arch: str,
    num_outputs: int,
    pretrained: bool = False,
    weights: str | os.PathLike | None = None,
    dropout: float = 0.1,
    freeze: str = "none",
) -> nn.Module:
    """Build ``arch`` with a fresh head of ``num_outputs`` logits behind dropout.

    Args:
        arch: ``smallcnn`` (:mod:`isic_tracking.models.small_cnn`, the demo's), a torchvision
            classifier name (``alexnet``, ``vgg16``, ``resnet50``...) or a timm model
            (``timm:convnext_tiny`` or the bare timm name).
        num_outputs: 1 for the binary task (one logit), N for N classes.
        pretrained: use ImageNet weights from the torch/timm cache (never downloaded).
        weights: a local state-dict file (``.pth``/``.pt``/``.safetensors``); implies pretrained.
        dropout: dropout probability right before the new head (default 0.1).
        freeze: ``none``, ``features`` (conv trunk frozen), ``all_but_head`` or
            ``upto:<layer>`` (every layer up to and including ``<layer>``).

    Returns:
        The model; ``model.isic_config`` holds what is needed to rebuild it.
    """
    if num_outputs < 1:
        raise IsicInputError(f"num_outputs must be >= 1, got {num_outputs}")
    lib, name = _split_arch(arch)
    if lib == "local":
        if pretrained and weights is None:
            raise IsicInputError(
                f"{arch!r} has no ImageNet weights: it is trained from scratch; drop "
                "`pretrained`, or pass weights=/path/file of an earlier state dict"
            )
        model = LOCAL_ARCHS[name](num_outputs, dropout)
        if weights is not None:
            _load_weights_file(model, weights, arch)
        head = "head"
    elif lib == "torchvision":
        tv_weights = _torchvision_cached(name) if pretrained and weights is None else None
        model = torchvision.models.get_model(name, weights=tv_weights)
        if weights is not None:
            _load_weights_file(model, weights, arch)
        head, old = _last_linear(model)
        _set_module(
            model, head, nn.Sequential(nn.Dropout(dropout), nn.Linear(old.in_features, num_outputs))
        )
    else:
        import timm

        use_hub = pretrained and weights is None
        try:
            with _hub_offline():
                model = timm.create_model(name, pretrained=use_hub, drop_rate=dropout)
        except Exception as err:  # offline hub miss, bad cache
            raise IsicInputError(
                f"pretrained weights for timm model {name!r} are not in the local Hugging Face "
                f"cache and nothing is downloaded at run time: pass weights=/path/file ({err})"
            ) from err
        if weights is not None:
            _load_weights_file(model, weights, arch)
        model.reset_classifier(num_outputs)
        head = _last_linear(model)[0]
    model.isic_head = head
    _freeze(model, freeze, head)
    model.isic_config = model_config(arch, num_outputs, dropout)
    return model


def model_config(arch: str, num_outputs: int, dropout: float = 0.1) -> dict[str, Any]:
    """The config stored with every checkpoint: enough to rebuild the architecture."""
    return {"arch": arch, "num_outputs": int(num_outputs), "dropout": float(dropout)}
