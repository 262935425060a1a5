"""Which way a render runs: bfloat16 autocast, channels-last input, progressive resolution.

A property of the render engine, applied to any preset. On a CPU with native
bfloat16 (AVX512-BF16 or AMX) the convolutions run about twice as fast under bf16 autocast, and
faster again with channels-last activations (oneDNN's blocked kernels): both are on by default
on such a CPU. Progressive resolution (the first part of the optimization at a fraction of the
size, then the image upsampled into the full-size parameterization) makes those steps about the
square of that fraction cheaper but lowers the activation reached (a pattern optimized at half
size is twice too large at full size): available, off by default. The objective is always
measured at full size and full precision at the end, so the activation reached stays
comparable across paths.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from isic_tracking.interpret.featvis import winograd
from isic_tracking.log import get_logger

log = get_logger(__name__)

#: Adam learning rate of a render: with the Fourier parameterization and the thesis's
#: transforms, 0.2 reaches in 60 steps a higher activation than 0.05 (lucent's) in 120
#: (AlexNet, smallcnn; docs/benchmarks.md).
DEFAULT_LR = 0.2
#: Default progressive schedule: no low-resolution stage (it lowers the activation reached).
PROGRESSIVE_STEPS = 0.0
#: Size of the low-resolution stage, as a fraction of the requested size.
PROGRESSIVE_SCALE = 0.5

Fits = Callable[[int], bool]


#: ISA caps under which the CPU's bf16 units are off: ``ATEN_CPU_CAPABILITY`` (ATen's kernels)
#: below AVX-512, or ``ONEDNN_MAX_CPU_ISA`` (oneDNN's convolutions) below AVX512_CORE_BF16.
#: A user (or a benchmark standing in for an AVX2-only laptop) who caps either gets fp32.
_NO_BF16_ATEN = ("default", "avx2")
_NO_BF16_ONEDNN = ("sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2", "avx512_core",
                   "avx512_core_vnni")  # fmt: skip


def isa_capped_below_bf16() -> bool:
    """Whether the environment caps torch's CPU kernels below the bf16 instructions."""
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", ""))
    return aten in _NO_BF16_ATEN or onednn.strip().lower() in _NO_BF16_ONEDNN


def cpu_bf16_supported() -> bool:
    """True when the CPU runs bfloat16 natively (AMX tiles or AVX512-BF16), where autocast pays;
    False elsewhere (torch would emulate bf16, slower than fp32), when torch cannot tell, or
    when the environment caps the kernels below it (:func:`isa_capped_below_bf16`)."""
    if isa_capped_below_bf16():
        return False
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except (RuntimeError, AttributeError):  # older/other builds: no capability query
            continue
    return False


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 autocast is native on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_bf16_supported()
    return False


@dataclass(frozen=True)
class RenderPath:
    """How one render runs.

    Attributes:
        amp: bfloat16 autocast for the forward/backward of the model.
        channels_last: model input in channels-last memory format.
        stages: ``(size, steps)`` per resolution stage, the last at the requested size.
        reason: why the default path differs from the fast one, if it does ("" otherwise).
    """

    amp: bool
    channels_last: bool
    stages: tuple[tuple[int, int], ...]
    reason: str = ""
    fold_bn: bool = False
    space_to_depth: bool = False
    target_channels: bool = False
    fused_adam: bool = False
    pool_first: bool = False
    winograd: bool = False

    @property
    def fast(self) -> bool:
        return (
            self.amp or self.channels_last or self.fold_bn or self.space_to_depth
            or self.target_channels or self.fused_adam or self.pool_first or self.winograd
            or len(self.stages) > 1
        )  # fmt: skip

    def settings(self) -> dict[str, Any]:
        """What ran, for the render's ``settings`` and a run's params."""
        return {
            "path": "fast" if self.fast else "plain",
            "amp": "bfloat16" if self.amp else "off",
            "channels_last": self.channels_last,
            "fold_bn": self.fold_bn,
            "space_to_depth": self.space_to_depth,
            "target_channels": self.target_channels,
            "fused_adam": self.fused_adam,
            "pool_before_relu": self.pool_first,
            "winograd": self.winograd,
            "stages": [list(s) for s in self.stages],
            "path_note": self.reason,
        }


def _stages(size: int, steps: int, progressive: float, scale: float, fits: Fits | None):
    low = int(round(size * scale))
    low_steps = int(round(steps * progressive))
    if progressive <= 0 or low_steps <= 0 or low >= size:
        return ((size, steps),), ""
    if fits is not None and not fits(low):
        return ((size, steps),), f"no progressive stage: the model does not run at {low} px"
    return ((low, low_steps), (size, steps - low_steps)), ""


def plan(
    device: torch.device,
    size: int,
    steps: int,
    *,
    amp: bool | None = None,
    channels_last: bool | None = None,
    fold_bn: bool | None = None,
    space_to_depth: bool | None = None,
    target_channels: bool | None = None,
    winograd: bool | None = None,
    progressive: float | None = None,
    progressive_scale: float = PROGRESSIVE_SCALE,
    fits: Fits | None = None,
    native_bf16: bool | None = None,
) -> RenderPath:
    """Resolve the render options (None: the device's default) into a :class:`RenderPath`.

    Defaults: on CPU the fast path (bf16 autocast where native, channels-last input, BatchNorm
    folded, only the read channel of a hooked conv computed, Adam's fused kernel (one pass
    instead of ~10 over the spectrum: 7.2 -> 1.1 ms per step of 8 images), max-pool before
    ReLU (:func:`pool_before_relu`); in fp32 also the image stem as a
    space-to-depth conv, :func:`stem_space_to_depth`, and the wide 3x3 convs by Winograd's
    F(4x4, 3x3), :func:`winograd_convs`);
    on CUDA bf16 autocast where supported (as before); :data:`PROGRESSIVE_STEPS` everywhere.

    Args:
        device: where the render runs.
        size, steps: the requested image size and number of steps.
        amp, channels_last, fold_bn, space_to_depth, target_channels, winograd, progressive:
            explicit choices (see :func:`fold_batchnorm`, :func:`stem_space_to_depth`,
            :func:`compute_target_channels`, :func:`winograd_convs`);
            ``progressive`` is the fraction of the steps run at ``progressive_scale`` of the
            size (0: off).
        fits: ``fits(size)`` says whether the model runs at that input size (no low stage
            where it does not).
        native_bf16: whether bf16 is native on ``device``; default :func:`bf16_supported`.
    """
    cpu = device.type == "cpu"
    native = bf16_supported(device) if native_bf16 is None else native_bf16
    reason = ""
    if amp is None:
        amp = native
        if cpu and not native:
            reason = "bf16 autocast off: this CPU has no native bfloat16 (AVX512-BF16/AMX)"
    elif amp and device.type == "cuda" and not native:
        amp, reason = False, "bf16 autocast off: this GPU does not support bfloat16"
    elif amp and cpu and not native:
        log.info("note: bf16 autocast asked on a CPU without native bfloat16: slower than fp32")
    if channels_last is None:
        channels_last = cpu
    if fold_bn is None:
        fold_bn = cpu
    # the other rewrites of the model and the optimizer go with BatchNorm folding (the CPU
    # fast path; off in a plain render); space-to-depth was measured a win in fp32 (AVX2), the
    # bf16 path stays as it was measured
    if space_to_depth is None:
        space_to_depth = fold_bn and not amp
    if winograd is None:  # fp32 only: under bf16 autocast the direct kernels are the fast ones
        winograd = fold_bn and not amp
    if target_channels is None:
        target_channels = fold_bn
    if progressive is None:
        progressive = PROGRESSIVE_STEPS
    if not 0.0 <= progressive < 1.0:
        raise ValueError(f"progressive must be in [0, 1), got {progressive}")
    if not 0.0 < progressive_scale <= 1.0:
        raise ValueError(f"progressive_scale must be in (0, 1], got {progressive_scale}")
    stages, note = _stages(size, steps, progressive, progressive_scale, fits)
    reasons = "; ".join(r for r in (reason, note) if r)
    return RenderPath(
        bool(amp), bool(channels_last), stages, reasons, bool(fold_bn), bool(space_to_depth),
        bool(target_channels), fused_adam=bool(fold_bn), pool_first=bool(fold_bn),
        winograd=bool(winograd),
    )  # fmt: skip


def _fused_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv = ``bn(conv(x))`` in eval mode (built, not deep-copied: the original may
    carry forward hooks, e.g. ones another library left behind)."""
    w, b = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
        device=w.device, dtype=w.dtype,
    )  # fmt: skip
    fused.weight, fused.bias = w, b
    return fused.requires_grad_(False)


def _adjacent_pairs(model: nn.Module) -> Iterator[tuple[nn.Sequential, int, tuple[str, str]]]:
    """Every pair of neighbours ``(seq[i], seq[i + 1])`` in the model's ``nn.Sequential``s,
    with their qualified names (the pairs a fast-path rewrite may swap or fuse)."""
    for prefix, seq in list(model.named_modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        names = [f"{prefix}.{i}" if prefix else str(i) for i in range(len(seq))]
        for i in range(len(seq) - 1):
            yield seq, i, (names[i], names[i + 1])


@contextlib.contextmanager
def fold_batchnorm(model: nn.Module, keep: Collection[str] = ()) -> Iterator[int]:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` in an
    ``nn.Sequential`` into that conv for the duration (yields how many were folded).

    In eval mode BatchNorm is a fixed per-channel affine map, so conv+BN is one conv with
    scaled weights and a bias: same outputs up to rounding, without BatchNorm's forward and
    backward over the largest feature maps (19 % of a smallcnn render step on CPU). A pair whose
    conv is named in ``keep`` (a hooked layer, whose own output must stay what it is) is left
    alone. A hooked BatchNorm does not stop the fold: its place holds an ``nn.Identity`` whose
    output is the fused conv's, i.e. the BatchNorm's output (the filter's response, what
    :mod:`isic_tracking.interpret.response` reads). The original modules are put back on exit.
    """
    swaps: list[tuple[nn.Sequential, int, nn.Module]] = []
    try:
        for seq, i, names in _adjacent_pairs(model):
            conv, bn = seq[i], seq[i + 1]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            if conv.training or bn.training or names[0] in keep:
                continue
            if bn.running_mean is None:  # track_running_stats=False: batch statistics
                continue
            fused = _fused_conv(conv, bn)
            swaps += [(seq, i, conv), (seq, i + 1, bn)]
            seq[i], seq[i + 1] = fused, nn.Identity()
        yield len(swaps) // 2
    finally:
        for seq, i, module in reversed(swaps):
            seq[i] = module


@contextlib.contextmanager
def pool_before_relu(model: nn.Module, keep: Collection[str] = ()) -> Iterator[int]:
    """Swap every ``ReLU`` directly followed by a ``MaxPool2d`` in an ``nn.Sequential`` for the
    duration (yields how many): ``relu(maxpool(x)) == maxpool(relu(x))`` (ReLU is monotone) and
    so are the gradients (but for exact ties at 0), and the ReLU's forward and backward then run
    on a map the pool made 4x smaller. A pair in which a layer is named in ``keep`` (hooked)
    stays as it is."""
    swaps: list[tuple[nn.Sequential, int]] = []
    try:
        for seq, i, names in _adjacent_pairs(model):
            relu, pool = seq[i], seq[i + 1]
            if type(relu) is not nn.ReLU or type(pool) is not nn.MaxPool2d:
                continue
            if names[0] in keep or names[1] in keep:
                continue
            seq[i], seq[i + 1] = pool, relu
            swaps.append((seq, i))
        yield len(swaps)
    finally:
        for seq, i in reversed(swaps):
            seq[i], seq[i + 1] = seq[i + 1], seq[i]


class SpaceToDepthConv(nn.Module):
    """A strided ``Conv2d`` computed as a stride-1 conv over ``stride x stride`` pixel blocks.

    The kernel is zero-padded to a multiple of the stride and each ``k x k`` tap of block
    ``(i, j)`` becomes a channel: ``conv(x, stride=s)`` equals ``conv(s2d(pad(x)), stride=1)``
    up to rounding. oneDNN's fp32 kernels handle a large strided kernel on 3 input channels
    badly (AlexNet's 11x11/4 stem: input gradient 27 GFLOP/s against ~100 for its stride-1
    3x3 convs on an AVX2 core); on blocks it is an ordinary 3x3 conv on 48 channels.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.s = conv.stride[0]
        self.k = conv.kernel_size[0]
        self.p = conv.padding[0]
        self.kb = math.ceil(self.k / self.s)
        w = conv.weight.detach()
        extra = self.kb * self.s - self.k
        w = F.pad(w, (0, extra, 0, extra))
        o, c = w.shape[:2]
        w = w.reshape(o, c, self.kb, self.s, self.kb, self.s).permute(0, 1, 3, 5, 2, 4)
        self.register_buffer("weight", w.reshape(o, c * self.s**2, self.kb, self.kb).clone())
        bias = conv.bias.detach().clone() if conv.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        s, k, p = self.s, self.k, self.p
        hb, wb = (h + 2 * p - k) // s + self.kb, (w + 2 * p - k) // s + self.kb
        x = F.pad(x, (p, wb * s - w - p, p, hb * s - h - p))  # negative: crop unused rows
        x = x.reshape(b, c, hb, s, wb, s).permute(0, 1, 3, 5, 2, 4).reshape(b, c * s * s, hb, wb)
        return F.conv2d(x.contiguous(memory_format=torch.channels_last), self.weight, self.bias)


def _stem_like(conv: nn.Module) -> bool:
    """A square strided conv on the image (<= 4 channels) that :class:`SpaceToDepthConv` takes."""
    return (
        type(conv) is nn.Conv2d and conv.in_channels <= 4 and conv.groups == 1
        and conv.stride[0] == conv.stride[1] >= 2 and conv.kernel_size[0] == conv.kernel_size[1]
        and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str) and conv.padding[0] == conv.padding[1]
    )  # fmt: skip


@contextlib.contextmanager
def _replaced(
    model: nn.Module,
    keep: Collection[str],
    take: Callable[[nn.Module], bool],
    make: Callable[[nn.Module], nn.Module],
) -> Iterator[int]:
    """Replace every submodule that ``take`` accepts by ``make(module)`` for the duration
    (yields how many); a module named in ``keep`` (a hooked layer) stays. Put back on exit."""
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        for name, module in list(model.named_modules()):
            if not name or name in keep or not take(module):
                continue
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            swaps.append((parent, attr, module))
            setattr(parent, attr, make(module))
        yield len(swaps)
    finally:
        for parent, attr, module in reversed(swaps):
            setattr(parent, attr, module)


def stem_space_to_depth(
    model: nn.Module, keep: Collection[str] = ()
) -> contextlib.AbstractContextManager[int]:
    """Replace every strided conv on the image (:func:`_stem_like`) by its
    :class:`SpaceToDepthConv` for the duration (yields how many); a conv named in ``keep`` (a
    hooked layer) stays. Stride-1 stems (VGG, smallcnn) are left alone: nothing to gain."""
    return _replaced(model, keep, _stem_like, SpaceToDepthConv)


def winograd_convs(
    model: nn.Module, keep: Collection[str] = ()
) -> contextlib.AbstractContextManager[int]:
    """Replace every frozen 3x3 conv where Winograd pays (:func:`.winograd.pays`) by its
    :class:`~.winograd.WinogradConv` for the duration (yields how many); a conv named in
    ``keep`` (a hooked layer) stays."""
    return _replaced(model, keep, winograd.pays, winograd.WinogradConv)


class TargetChannelConv(nn.Module):
    """A ``Conv2d`` that computes, for batch element ``b``, only output channel ``channels[b]``
    (one grouped conv, one group per element) and puts it in place in an otherwise zero output.

    For an objective that reads only that channel of that conv (a unit's mean activation) the
    values and gradients it sees are the conv's; the other channels' maps are never needed.
    AlexNet's ``features.10`` computed 256 maps of which the objective read one per image: its
    forward + input gradient went from 34 to 9 ms per step of 8 images (fp32, AVX2 core).
    """

    def __init__(self, conv: nn.Conv2d, channels: list[int]) -> None:
        super().__init__()
        self.conv = conv
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        conv, b = self.conv, x.shape[0]
        chans = self.channels if len(self.channels) == b else self.channels[:1] * b
        if len(chans) != b:
            raise ValueError(f"{len(self.channels)} target channels for a batch of {b}")
        idx = torch.tensor(chans, device=x.device)
        bias = conv.bias[idx] if conv.bias is not None else None
        y = F.conv2d(
            x.reshape(1, -1, *x.shape[2:]), conv.weight[idx], bias, conv.stride, conv.padding,
            conv.dilation, groups=b,
        )  # fmt: skip
        y = y.reshape(b, *y.shape[2:])
        out = y.new_zeros(b, conv.out_channels, *y.shape[1:])
        return out.index_put((torch.arange(b, device=x.device), idx), y)


@contextlib.contextmanager
def compute_target_channels(model: nn.Module, reads: dict[str, list[int]] | None) -> Iterator[int]:
    """For the duration, each plain ``Conv2d`` named in ``reads`` (an objective's
    :attr:`~.objectives.Objective.reads`) computes only the channels read
    (:class:`TargetChannelConv`); yields how many convs. Nothing changes when ``reads`` is None
    (an objective that may read more), the layer is not such a conv or a channel is out of
    range (the objective raises its own message)."""
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        modules = dict(model.named_modules())
        for name, chans in (reads or {}).items():
            module = modules.get(name) if name else None  # unknown: the recorder says so
            plain = type(module) is nn.Conv2d and module.groups == 1
            if not plain or module.padding_mode != "zeros" or isinstance(module.padding, str):
                continue
            if not all(0 <= c < module.out_channels for c in chans):
                continue  # the objective itself says which channel is out of range
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            swaps.append((parent, attr, module))
            setattr(parent, attr, TargetChannelConv(module, list(chans)))
        yield len(swaps)
    finally:
        for parent, attr, module in reversed(swaps):
            setattr(parent, attr, module)


@contextlib.contextmanager
def rewritten(
    model: nn.Module,
    path: RenderPath,
    layers: Collection[str],
    reads: dict[str, list[int]] | None,
) -> Iterator[dict[str, int]]:
    """The model rewrites ``path`` asks for, for the duration, hooked ``layers`` kept as they
    are (BatchNorm folded, space-to-depth stem, pool before ReLU, only the channels ``reads``
    names, wide 3x3 convs by Winograd); yields how many of each were made (the render's
    settings)."""
    steps = (
        ("folded_bn", path.fold_bn, lambda: fold_batchnorm(model, layers)),
        ("space_to_depth_convs", path.space_to_depth, lambda: stem_space_to_depth(model, layers)),
        ("pools_before_relu", path.pool_first, lambda: pool_before_relu(model, layers)),
        # before the target channels: a TargetChannelConv holds the hooked conv it computes
        # from, which must stay a Conv2d (the hooked layers themselves are kept anyway)
        ("winograd_convs", path.winograd, lambda: winograd_convs(model, layers)),
        ("target_channel_convs", path.target_channels,
         lambda: compute_target_channels(model, reads)),
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        yield {key: stack.enter_context(make()) if on else 0 for key, on, make in steps}


def path_params(
    device: torch.device | str, size: int, steps: int, amp: bool | None = None
) -> dict[str, Any]:
    """``render.*`` run params: the path :func:`~.render.render` takes on ``device`` with
    ``amp`` (None: its default; what a visualize run logs before it renders; each result's
    ``settings`` has the same)."""
    settings = plan(torch.device(device), size, steps, amp=amp).settings()
    return {f"render.{k}": v for k, v in settings.items() if v != ""}
