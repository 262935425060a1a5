"""The render loop: optimize B images at once, one forward pass per step.

Activation maximization (Erhan et al. 2009; Olah et al. 2017): start from a random image and
follow the gradient of an objective (a channel's mean activation, a logit...) with respect to
the image, under random transforms and image priors so that the result is an image and not
adversarial noise.

Why it is fast: the B images of a batch each carry their own target (a tensor-indexed
objective), the forward stops at the deepest layer the objective reads, the model's weights need
no gradient, and the input shape never changes (see :mod:`.transforms`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis.fastpath import DEFAULT_LR, RenderPath, plan, rewritten
from isic_tracking.interpret.featvis.objectives import Activations, Objective
from isic_tracking.interpret.featvis.param import ImageParam, ParamFn, fourier_image
from isic_tracking.interpret.featvis.regularizers import Regularizer
from isic_tracking.interpret.featvis.transforms import Transform, compose, thesis_transforms
from isic_tracking.interpret.hooks import LayerRecorder, frozen_eval
from isic_tracking.utils import progress


@dataclass
class RenderResult:
    """What a render produced.

    Attributes:
        images: ``[B, 3, H, W]`` float32 in ``[0, 1]`` on the CPU.
        activation: ``[B]`` objective value reached by each final image (no transform).
        history: ``[R, B]`` objective value during the optimization (on the transformed image)
            at the steps in ``history_steps``.
        history_steps: ``[R]`` step index of each history row.
        labels: one label per image (e.g. ``features.10:3``).
        objective: the objective's name.
        seconds: wall time of the optimization.
        settings: what was asked (engine, steps, lr, size, seed, parameterization...).
    """

    images: Tensor
    activation: Tensor
    history: Tensor
    history_steps: Tensor
    labels: list[str]
    objective: str
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)


def model_normalization(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the model's input normalization: from ``model.isic_config``, else ImageNet."""
    cfg = getattr(model, "isic_config", None) or {}
    return tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _amp_context(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast (no loss scaling needed) when ``amp``, as resolved by :func:`.plan`."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _runs_at(recorder: LayerRecorder, size: int, device) -> bool:
    try:
        with torch.no_grad():
            recorder(torch.zeros(1, 3, size, size, device=device))
        return True
    except RuntimeError:
        return False


def _explain_size(recorder: LayerRecorder, size: int, device, err: RuntimeError) -> None:
    """Raise IsicInputError with the smallest working size when ``size`` is too small."""
    if _runs_at(recorder, size, device):
        return  # not a size problem: the caller re-raises the original error
    hi = size * 2
    while not _runs_at(recorder, hi, device):
        if hi > 4096:
            return
        hi *= 2
    lo = size  # fails at lo, runs at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _runs_at(recorder, mid, device) else (mid, hi)
    deepest = recorder.layers[-1] or "the output"
    raise IsicInputError(
        f"image size {size} is too small for {type(recorder.model).__name__} up to layer "
        f"{deepest!r}: the smallest size that runs is {hi} px; use image_size >= {hi} "
        f"({err})"
    ) from err


def probe_fits(model: nn.Module, layers: Sequence[str], size: int) -> bool:
    """Whether ``model`` runs up to ``layers`` at ``size`` px."""
    try:
        probe(model, layers, size)
        return True
    except IsicInputError:
        return False


def probe(model: nn.Module, layers: Sequence[str], size: int) -> Activations:
    """One no-grad forward of a single grey image at ``size``, stopped at the deepest layer;
    an unknown layer or a too-small size raises IsicInputError."""
    device = _model_device(model)
    with frozen_eval(model), LayerRecorder(model, layers) as rec, torch.no_grad():
        try:
            return rec(torch.zeros(1, 3, size, size, device=device))
        except RuntimeError as err:
            _explain_size(rec, size, device, err)
            raise


def check_request(model: nn.Module, objective: Objective, size: int) -> None:
    """Fail early with a clear message: unknown layer, index out of range, image too small."""
    acts = probe(model, objective.layers, size)
    b = objective.batch or 1
    objective({k: v.expand(b, *v.shape[1:]) for k, v in acts.items()})


def layer_channels(model: nn.Module, layer: str, size: int) -> int:
    """Number of channels of ``layer``'s output for ``size`` px inputs."""
    return int(probe(model, [layer], size)[layer].shape[1])


def evaluate(
    model: nn.Module,
    objective: Objective,
    images: Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Tensor:
    """Objective value of each image as it is (no transform), ``Tensor[B]`` on the CPU.

    The common yardstick for "activation reached", whichever engine produced the images.
    """
    device = _model_device(model)
    if mean is None or std is None:
        mean, std = model_normalization(model)
    with frozen_eval(model), LayerRecorder(model, objective.layers) as rec, torch.no_grad():
        return objective(rec(normalize(images.to(device), mean, std))).float().cpu()


#: ``on_step(step, images)``: called after every optimizer step (1-based) with a function that
#: returns the current images at the requested size (no gradient), e.g. to track the activation.
OnStep = Callable[[int, Callable[[], Tensor]], None]


def _at_size(image_fn: ImageParam, size: int) -> Callable[[], Tensor]:
    """The current images, upsampled to ``size`` when the stage runs smaller."""

    @torch.no_grad()
    def images() -> Tensor:
        x = image_fn()
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x.detach()

    return images


def render(
    model: nn.Module,
    objective: Objective,
    *,
    batch: int | None = None,
    size: int = 224,
    param_fn: ParamFn = fourier_image,
    transforms: Transform | Sequence[Transform] | None = None,
    regularizers: Sequence[Regularizer] = (),
    steps: int = 200,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    device: torch.device | str | None = None,
    amp: bool | None = None,
    channels_last: bool | None = None,
    fold_bn: bool | None = None,
    space_to_depth: bool | None = None,
    target_channels: bool | None = None,
    winograd: bool | None = None,
    progressive: float | None = None,
    record_every: int = 1,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    show_progress: bool = False,
    on_step: OnStep | None = None,
) -> RenderResult:
    """Optimize ``batch`` images to maximize ``objective``, all in one forward per step.

    Args:
        model: the network (any ``nn.Module`` taking ``[B, 3, H, W]``). It is put in eval mode
            and its weights get no gradient during the render; both are restored after. It is
            moved to ``device`` when one is given.
        objective: what to maximize (see :mod:`.objectives`); a per-element objective fixes B.
        batch: number of images; default ``objective.batch`` or 1.
        size: height = width of the rendered images (kept constant through the transforms).
        param_fn: parameterization, called ``param_fn(batch, size, generator=, device=)``
            (default :func:`~.param.fourier_image`; use ``functools.partial`` for options).
        transforms: random transforms, one or a list (composed); default
            :func:`~.transforms.thesis_transforms`; ``[]`` for none.
        regularizers: image priors (see :mod:`.regularizers`): in the loss, or applied every k
            steps.
        steps: optimization steps (default 200).
        lr: Adam learning rate (default :data:`~.fastpath.DEFAULT_LR` = 0.2: in half the steps
            a higher activation than lucent's 0.05, see docs/benchmarks.md).
        seed: seeds the start image and every random transform; same seed, same images.
        device: where to render; default the model's device.
        amp: bfloat16 autocast; default on where bf16 is native (CUDA with bf16, CPUs with
            AVX512-BF16/AMX), see :mod:`.fastpath`.
        channels_last: channels-last model input; default on for CPU.
        fold_bn: fold eval-mode BatchNorm into the conv before it (:func:`.fold_batchnorm`,
            not where a hooked layer is involved); default on for CPU.
        space_to_depth: a strided conv on the image as a stride-1 conv over pixel blocks
            (:func:`.stem_space_to_depth`, same outputs); default on for CPU in fp32.
        target_channels: a conv whose output the objective reads only one channel of per image
            computes only that channel (:func:`.compute_target_channels`); default on for CPU.
        winograd: frozen 3x3 convs with many channels by Winograd's F(4x4, 3x3)
            (:func:`.winograd_convs`, same outputs up to ~1e-5 relative); default on for CPU in
            fp32.
        progressive: fraction of the steps run at half the size before the image is upsampled
            into the full-size parameterization (default 0: off; it lowers the activation
            reached, features optimized at half size are too large at full size).
        record_every: record the objective every this many steps (0: never).
        mean, std: input normalization; default from ``model.isic_config``, else ImageNet.
        show_progress: a progress bar over the steps.
        on_step: see :data:`OnStep` (its own time counts in ``seconds``).

    Returns:
        :class:`RenderResult` with the images, the activation reached and its history;
        ``settings`` says which path ran (``path``, ``amp``, ``channels_last``, ``fold_bn`` and
        ``folded_bn`` (conv+BN pairs folded), ``space_to_depth`` and ``space_to_depth_convs``,
        ``target_channels`` and ``target_channel_convs``, ``pool_before_relu`` and
        ``pools_before_relu``, ``winograd`` and ``winograd_convs``, ``fused_adam``, ``stages``).

    Raises:
        IsicInputError: unknown layer, channel out of range, image size too small.
    """
    device = _render_device(model, device)
    if mean is None or std is None:
        mean, std = model_normalization(model)
    loop = _Loop(
        objective=objective,
        batch=_batch_of(objective, batch),
        # on the device once: the step loop must not copy them from the host every step
        norm=partial(
            normalize, mean=torch.tensor(mean, device=device), std=torch.tensor(std, device=device)
        ),
        transforms=_composed(transforms),
        in_loss=[r for r in regularizers if r.in_loss],
        periodic=[r for r in regularizers if not r.in_loss],
        record_every=record_every,
        device=device,
        param_fn=param_fn,
        lr=lr,
    )
    path = plan(
        device, size, steps, amp=amp, channels_last=channels_last, fold_bn=fold_bn,
        space_to_depth=space_to_depth, target_channels=target_channels, winograd=winograd,
        progressive=progressive, fits=lambda s: probe_fits(model, objective.layers, s),
    )  # fmt: skip
    _follow(loop, path)
    cudnn_benchmark = torch.backends.cudnn.benchmark
    with (
        frozen_eval(model),
        rewritten(model, path, objective.layers, objective.reads) as rewrites,
        LayerRecorder(model, objective.layers) as recorder,
        torch.random.fork_rng(
            devices=[device.index] if device.type == "cuda" else [], device_type="cuda"
        ),
    ):
        _seed_devices(device, seed)
        try:
            start = time.perf_counter()
            bar = progress(None, total=steps, desc="render", disable=not show_progress)
            generator = torch.Generator().manual_seed(seed)
            image_fn = _optimize(loop, recorder, path.stages, generator, size, bar, on_step)
            bar.close()
            final = _at_size(image_fn, size)()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            with torch.no_grad():  # full precision: comparable across engines and settings
                activation = objective(recorder(loop.norm(final))).float()
        finally:
            torch.backends.cudnn.benchmark = cudnn_benchmark
    settings = {
        "engine": "isic", "steps": steps, "lr": lr, "size": size, "seed": seed, "batch": loop.batch,
        "param": _param_name(param_fn), "regularizers": [r.name for r in regularizers],
        "device": str(device), **path.settings(), **rewrites,
    }  # fmt: skip
    return _result(loop, final, activation, seconds, settings)


def _result(
    loop: _Loop, final: Tensor, activation: Tensor, seconds: float, settings: dict[str, Any]
) -> RenderResult:
    """The render's images and activation on the CPU, with the history it recorded."""
    return RenderResult(
        images=final.float().cpu(),
        activation=activation.cpu(),
        history=torch.stack(loop.history).cpu() if loop.history else torch.empty(0, loop.batch),
        history_steps=torch.tensor(loop.history_steps, dtype=torch.long),
        labels=loop.objective.element_labels(loop.batch),
        objective=loop.objective.name,
        seconds=seconds,
        settings=settings,
    )


@dataclass
class _Loop:
    """What every step of one render uses, resolved once, and the history it records."""

    objective: Objective
    batch: int
    norm: Callable[[Tensor], Tensor]
    transforms: Transform
    in_loss: list[Regularizer]
    periodic: list[Regularizer]
    record_every: int
    device: torch.device
    param_fn: ParamFn
    lr: float
    amp: bool = False
    fused_adam: bool = False
    memory_format: torch.memory_format = torch.contiguous_format
    history: list[Tensor] = field(default_factory=list)
    history_steps: list[int] = field(default_factory=list)


def _follow(loop: _Loop, path: RenderPath) -> None:
    """Set the step loop's precision, memory format and optimizer kernel from ``path``."""
    loop.amp = path.amp
    loop.fused_adam = path.fused_adam
    loop.memory_format = torch.channels_last if path.channels_last else torch.contiguous_format


def _render_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    """The render's device (a bare ``cuda`` pinned to the current one), the model moved there."""
    device = torch.device(device) if device is not None else _model_device(model)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if _model_device(model) != device:
        model.to(device)
    return device


def _batch_of(objective: Objective, batch: int | None) -> int:
    if batch is None:
        return objective.batch or 1
    if objective.batch is not None and objective.batch != batch:
        raise IsicInputError(
            f"batch={batch} but {objective.name} has {objective.batch} targets: leave batch out"
        )
    return batch


def _composed(transforms: Transform | Sequence[Transform] | None) -> Transform:
    if transforms is None:
        return thesis_transforms()
    return transforms if callable(transforms) else compose(list(transforms))


def _seed_devices(device: torch.device, seed: int) -> None:
    """Seed the random transforms (inside the render's forked RNG state)."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one input shape per stage: tune once
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _param_name(param_fn: ParamFn) -> str:
    return getattr(param_fn, "__name__", None) or getattr(
        getattr(param_fn, "func", None), "__name__", repr(param_fn)
    )


def _optimize(
    loop: _Loop,
    recorder: LayerRecorder,
    stages: Sequence[tuple[int, int]],
    generator: torch.Generator,
    size: int,
    bar: Any,
    on_step: OnStep | None,
) -> ImageParam:
    """Every (size, steps) stage (a smaller size first when progressive), each from the last
    stage's image upsampled; returns the final image parameterization."""
    step, image_fn = 0, None
    for stage_size, stage_steps in stages:
        params, new_fn = loop.param_fn(
            loop.batch, stage_size, generator=generator, device=loop.device
        )
        if image_fn is not None:  # next stage: start from the upsampled image
            new_fn.assign(_at_size(image_fn, stage_size)())
        image_fn = new_fn
        fused = {"fused": True} if loop.fused_adam else {}
        optimizer = torch.optim.Adam(params, lr=loop.lr, **fused)
        for _ in range(stage_steps):
            _step(loop, recorder, image_fn, optimizer, step, stage_size)
            step += 1
            bar.update()
            if on_step is not None:
                on_step(step, _at_size(image_fn, size))
    return image_fn


def _step(
    loop: _Loop,
    recorder: LayerRecorder,
    image_fn: ImageParam,
    optimizer: torch.optim.Optimizer,
    step: int,
    stage_size: int,
) -> None:
    """One optimizer step: transform, forward to the objective's layers, priors, backward."""
    images = image_fn()
    with _amp_context(loop.device, loop.amp):
        x = loop.norm(loop.transforms(images)).contiguous(memory_format=loop.memory_format)
        try:
            acts = recorder(x)
        except RuntimeError as err:
            if step == 0:
                _explain_size(recorder, stage_size, loop.device, err)
            raise
        value = loop.objective(acts).float()
    loss = -value.sum()
    for reg in loop.in_loss:
        loss = loss + reg.penalty(images).sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    for reg in loop.periodic:
        if (step + 1) % reg.every == 0:
            with torch.no_grad():
                image_fn.assign(reg.apply(image_fn()))
    if loop.record_every and step % loop.record_every == 0:
        loop.history.append(value.detach())
        loop.history_steps.append(step)
