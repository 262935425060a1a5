"""The same request rendered by torch-dreams 4.0 (the library the thesis used).

For reproduction and comparison with :func:`~.render.render`: one ``Dreamer.render`` per channel
(torch-dreams optimizes one image at a time), FFT + decorrelated colour parameterization, its own
random affine + random resize transforms, AdamW with gradient clipping. The activation reached is
measured afterwards with :func:`~.render.evaluate`, the same yardstick as for our engine.

torch-dreams records the hooked module's output after the whole forward, so a ``Conv2d`` followed
by ``ReLU(inplace=True)`` (AlexNet, VGG) is optimized post-ReLU; :func:`~.render.evaluate` reads
the conv output itself.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis.objectives import LOGITS, channel
from isic_tracking.interpret.featvis.render import (
    OnStep,
    RenderResult,
    check_request,
    evaluate,
    model_normalization,
    probe,
)
from isic_tracking.interpret.hooks import frozen_eval
from isic_tracking.models import get_layer
from isic_tracking.utils import progress


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed python, numpy and torch (torch-dreams draws from all three) and restore them after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[], device_type="cuda"):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def _restore_model(model: nn.Module, freeze: bool) -> Iterator[None]:
    """Keep the model as it was: torch-dreams sets eval mode and accumulates weight gradients."""
    was_training = model.training
    grads = [(p, p.grad) for p in model.parameters()]
    try:
        with frozen_eval(model) if freeze else contextlib.nullcontext():
            yield
    finally:
        model.train(was_training)
        for p, g in grads:
            p.grad = g


def _check_smallest(model: nn.Module, size: int, scale_min: float) -> None:
    """torch-dreams shrinks the image by up to ``scale_min`` and always runs the whole model."""
    small = int(size * scale_min)
    try:
        probe(model, [LOGITS], small)
    except IsicInputError as err:
        raise IsicInputError(
            f"torch-dreams resizes the image by down to {scale_min:g} and runs the whole model: "
            f"at image size {size} that is {small} px, too small ({err}). Use a larger image "
            "size or a larger scale minimum."
        ) from err


def _tracked_param(size: int, device: torch.device, on_step: OnStep | None):
    """torch-dreams' default image parameter (same start image: created at the same point of
    the seeded RNG sequence as ``Dreamer.render`` creates it), reporting to ``on_step``.

    ``Dreamer.render`` calls ``forward`` at the start of step i, i.e. on the image after i
    updates; it deep-copies the parameter, so the step counter lives in this closure."""
    from torch_dreams.auto_image_param import AutoImageParam

    if on_step is None:
        return None
    count = [0]

    class Tracked(AutoImageParam):
        def forward(self, device):
            done = count[0]
            count[0] += 1
            if done:
                on_step(done, lambda: self.postprocess(device=device).detach())
            return super().forward(device)

    return Tracked(height=size, width=size, device=str(device), standard_deviation=0.01)


def render_torch_dreams(
    model: nn.Module,
    layer_name: str,
    channels: Sequence[int],
    size: int = 224,
    steps: int = 120,
    lr: float = 9e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    rotate: float = 15.0,
    scale: tuple[float, float] = (0.5, 1.2),
    translate: float = 0.1,
    weight_decay: float = 0.0,
    grad_clip: float = 1.0,
    freeze_model: bool = True,
    show_progress: bool = False,
    on_step: OnStep | None = None,
) -> RenderResult:
    """Render the mean activation of each of ``channels`` of ``layer_name`` with torch-dreams.

    Args:
        model: the network; its mode and weight gradients are restored afterwards.
        layer_name: module name, e.g. ``features.10``.
        channels: channel indices, one image each.
        size: image side in pixels.
        steps: optimization steps per channel (torch-dreams' ``iters``).
        lr: AdamW learning rate (torch-dreams' default 9e-3).
        seed: seeds python, numpy and torch for the whole call (global states restored after).
        device: where to render; default the model's device.
        mean, std: input normalization; default from ``model.isic_config``, else ImageNet.
        rotate, scale, translate: torch-dreams' ``rotate_degrees``, ``(scale_min, scale_max)``,
            ``translate_x = translate_y``.
        weight_decay, grad_clip: torch-dreams' AdamW weight decay and gradient-norm clip.
        freeze_model: turn the weights' ``requires_grad`` off during the render (torch-dreams
            itself leaves it on and computes, and accumulates, weight gradients every step).
        show_progress: a progress bar over the channels.
        on_step: ``on_step(step, images)`` per channel, as :func:`~.render.render`'s (``images()``
            is that channel's current ``[1, 3, size, size]`` image); a new channel restarts at 1.

    Returns:
        :class:`~.render.RenderResult` like :func:`~.render.render` (history per channel:
        torch-dreams' own objective value at each step).
    """
    get_layer(model, layer_name)  # unknown layer: IsicInputError listing the conv layers
    if device is not None:
        model.to(device)
    device = next(model.parameters()).device
    objective = channel(layer_name, list(channels))
    check_request(model, objective, size)
    _check_smallest(model, size, scale[0])
    module = get_layer(model, layer_name)
    if mean is None or std is None:
        mean, std = model_normalization(model)
    options = {
        "iters": steps, "width": size, "height": size, "lr": lr, "rotate_degrees": rotate,
        "scale_min": scale[0], "scale_max": scale[1], "translate_x": translate,
        "translate_y": translate, "weight_decay": weight_decay, "grad_clip": grad_clip,
    }  # fmt: skip
    images, history = [], []
    start = time.perf_counter()
    with _restore_model(model, freeze_model), _seeded(seed):
        dreamer = _dreamer(model, device, mean, std)
        for ch in progress(list(channels), desc="torch-dreams", disable=not show_progress):
            image, trace = _dream_channel(dreamer, module, ch, device, on_step, options)
            images.append(image)
            history.append(trace)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    images_t = torch.cat(images)
    return RenderResult(
        images=images_t,
        activation=evaluate(model, objective, images_t, mean, std),
        history=torch.stack(history, 1),
        history_steps=torch.arange(steps),
        labels=list(objective.element_labels(len(channels))),
        objective=objective.name,
        seconds=seconds,
        settings={
            "engine": "torch_dreams",
            "steps": steps,
            "lr": lr,
            "size": size,
            "seed": seed,
            "batch": 1,
            "param": "torch_dreams.AutoImageParam",
            "regularizers": [],
            "device": str(device),
            "freeze_model": freeze_model,
        },  # fmt: skip
    )


def _dreamer(model: nn.Module, device: torch.device, mean, std):
    """torch-dreams' ``Dreamer`` over ``model``, with the model's own normalization when it is
    not ImageNet's (torch-dreams' default)."""
    from torch_dreams import Dreamer  # imported here: optional backend, slow import
    from torchvision.transforms import Normalize

    dreamer = Dreamer(model, quiet=True, device=str(device))
    imagenet = torch.tensor([*IMAGENET_MEAN, *IMAGENET_STD])
    if not torch.allclose(torch.tensor([*mean, *std], dtype=torch.float32), imagenet):
        dreamer.set_custom_normalization(Normalize(mean, std))
    return dreamer


def _dream_channel(
    dreamer, module: nn.Module, ch: int, device: torch.device, on_step, options: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """One channel's render: its final image ``[1, 3, H, W]`` and torch-dreams' objective
    value at each step."""
    trace: list[torch.Tensor] = []

    def objective_fn(outs):
        value = outs[0][:, ch].mean()
        trace.append(value.detach())
        return -value

    size = options["width"]
    param = dreamer.render(
        layers=[module],
        image_parameter=_tracked_param(size, device, on_step),
        custom_func=objective_fn,
        **options,
    )
    with torch.no_grad():
        image = param.postprocess(device=device).detach().float().cpu()
    if on_step is not None:
        on_step(options["iters"], lambda: param.postprocess(device=device).detach())
    return image, torch.stack(trace).float().cpu()
