"""Where a model's weights start: random (with its seed), an ImageNet weights file, the torch
cache, or another model of ours (``models:/...``, e.g. the ``pretrain`` stage's).

The init is a recorded fact of every model (its ``config.json``, the run params, the registered
version): :func:`describe_init` makes the record, and :func:`initial_model` rebuilds exactly the
weights a model was fine-tuned from, with the same head handling (same seed, same fresh head),
so every before/after comparison uses the model's own base and never an unrelated one.
Nothing here talks to MLflow: a ``models:/`` init arrives as a local weights file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from isic_tracking.config import IMAGENET, RANDOM, is_model_uri
from isic_tracking.errors import IsicInputError
from isic_tracking.models.factory import _split_arch, create_model


@dataclass(frozen=True)
class Init:
    """The recorded init of a model.

    Attributes:
        kind: ``random``, ``file`` (a weights file), ``cache`` (the torch cache) or ``model``.
        source: the seed's text, the file's path, the cache file's name, or the model URI.
        seed: the seed the model was built under (random weights and the fresh head).
        sha256: of the weights file (None for random init).
    """

    kind: str
    source: str
    seed: int
    sha256: str | None = None

    def record(self) -> dict[str, Any]:
        """What ``config.json`` stores under ``init``."""
        return asdict(self)

    def params(self) -> dict[str, str]:
        """Run params ``init.kind``, ``init.source``, ``init.sha256``."""
        return {
            "init.kind": self.kind,
            "init.source": self.source,
            "init.sha256": self.sha256 or "",
        }

    def describe(self) -> str:
        """One line for descriptions and reports."""
        sha = f" (sha256 {self.sha256[:12]}…)" if self.sha256 else ""
        return {
            "random": f"random init (seed {self.seed})",
            "file": f"weights file `{self.source}`{sha}",
            "cache": f"ImageNet weights from the torch cache, `{self.source}`{sha}",
            "model": f"model `{self.source}`{sha}",
        }[self.kind]


def init_from_record(record: dict[str, Any] | None) -> Init | None:
    """The :class:`Init` of a ``config.json`` (None for models trained before it was kept)."""
    return Init(**record) if record else None


@cache
def _sha256(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file (computed once per file version in a process)."""
    st = Path(path).stat()
    return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime)


def torch_cache_file(arch: str) -> Path | None:
    """The torch-cache file of a torchvision arch's default ImageNet weights (None: not a
    torchvision arch)."""
    lib, name = _split_arch(arch)
    if lib != "torchvision":
        return None
    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def describe_init(arch: str, requested: str, seed: int, weights_file: str | None = None) -> Init:
    """The record of an init.

    Args:
        arch: the architecture.
        requested: from :func:`requested_init`.
        seed: the seed the model is built under.
        weights_file: the local file of a ``models:/`` init.
    """
    if requested == RANDOM:
        return Init("random", f"seed {seed}", seed)
    if requested == IMAGENET:
        cached = torch_cache_file(arch)
        if cached is None or not cached.is_file():
            return Init("cache", f"{arch} (timm / Hugging Face cache)", seed)
        return Init("cache", cached.name, seed, file_sha256(cached))
    if is_model_uri(requested):
        if not weights_file:
            raise IsicInputError(f"init {requested}: its weights were not fetched")
        return Init("model", requested, seed, file_sha256(weights_file))
    path = Path(requested).expanduser()
    if not path.is_file():
        raise IsicInputError(f"init weights file {path} for {arch!r} does not exist")
    return Init("file", str(path.resolve()), seed, file_sha256(path))


def build_initial(
    arch: str,
    num_outputs: int,
    requested: str,
    seed: int,
    dropout: float = 0.1,
    freeze: str = "none",
    weights_file: str | None = None,
) -> nn.Module:
    """The model as fine-tuning starts: seeded, then built from the init (a ``models:/`` init
    reads ``weights_file``). Same arguments, same weights, head included."""
    torch.manual_seed(seed)
    if is_model_uri(requested):
        if not weights_file:
            raise IsicInputError(f"init {requested}: its weights were not fetched")
        return create_model(arch, num_outputs, weights=weights_file, dropout=dropout, freeze=freeze)
    if requested == RANDOM:
        return create_model(arch, num_outputs, dropout=dropout, freeze=freeze)
    if requested == IMAGENET:
        return create_model(arch, num_outputs, pretrained=True, dropout=dropout, freeze=freeze)
    return create_model(arch, num_outputs, weights=requested, dropout=dropout, freeze=freeze)


def initial_model(config: dict[str, Any], weights_file: str | None = None) -> nn.Module:
    """The weights a model of ``config`` (its ``config.json``) was fine-tuned from, in eval
    mode: random init with its recorded seed, the same ImageNet file (its sha256 checked) or
    the same base model (``weights_file``, fetched by the caller)."""
    init = init_from_record(config.get("init"))
    if init is None:
        raise IsicInputError(
            f"the model ({config.get('arch')}) was trained before its init was recorded: "
            "retrain it to compare it with its base"
        )
    requested = {"random": RANDOM, "cache": IMAGENET}.get(init.kind, init.source)
    if init.kind == "file" and init.sha256 and file_sha256(init.source) != init.sha256:
        raise IsicInputError(
            f"init file {init.source} changed since the model was trained (sha256 differs)"
        )
    model = build_initial(
        config["arch"],
        config["num_outputs"],
        requested,
        init.seed,
        dropout=config.get("dropout", 0.1),
        weights_file=weights_file,
    )
    if init.kind == "model" and weights_file and file_sha256(weights_file) != init.sha256:
        raise IsicInputError(f"base model {init.source} is not the one the model started from")
    return model.eval()


def native_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights under the architecture's own key names: a torchvision model's head, which
    :func:`create_model` wraps as ``Sequential(Dropout, Linear)``, goes back to one Linear's
    names (``classifier.6.1.weight`` -> ``classifier.6.weight``), so the file loads like a
    torchvision checkpoint (the head, of another size, keeps its fresh init there)."""
    state = model.state_dict()
    head = getattr(model, "isic_head", None)
    lib = _split_arch(model.isic_config["arch"])[0] if hasattr(model, "isic_config") else ""
    if lib != "torchvision" or head is None:
        return dict(state)
    prefix = f"{head}.1."
    return {
        (f"{head}." + k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()
    }


def find_in_cache_folder(folder: str | os.PathLike, arch: str) -> Path:
    """A torchvision weights file in a folder of the torch-cache layout, found by torchvision's
    own file name for ``arch`` (``alexnet-owt-*.pth``, ``vgg16-*.pth``, ``resnet50-*.pth``)."""
    cached = torch_cache_file(arch)
    if cached is None:
        raise IsicInputError(f"{arch!r} is not a torchvision model: give its file as {arch}=PATH")
    stem = cached.name.rsplit("-", 1)[0]
    folder = Path(folder).expanduser()
    for where in (folder, folder / "checkpoints", folder / "hub" / "checkpoints"):
        found = sorted(where.glob(f"{stem}-*.pth"))
        if found:
            return found[0]
    raise IsicInputError(
        f"no ImageNet weights for {arch!r} in {folder}: looked for {stem}-*.pth (torchvision's "
        f"{cached.name}) there and in its checkpoints/ and hub/checkpoints/"
    )


def init_for_arch(spec: str | None, arch: str) -> str | None:
    """The init of ``arch`` from a per-architecture spec (``main``/``thesis``): ``arch=value``
    pairs separated by commas (an arch without a pair gets none), a folder in the torch-cache
    layout, or one value for every arch (``random``, ``imagenet``, a file, a model URI)."""
    if not spec:
        return None
    value: str | None = spec
    if "=" in spec and not is_model_uri(spec):
        pairs = dict(p.strip().split("=", 1) for p in spec.split(",") if p.strip())
        value = pairs.get(arch)
    if value and Path(value).expanduser().is_dir():
        return str(find_in_cache_folder(value, arch))
    return value
