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
import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

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

    @property
    def fast(self) -> bool:
        return self.amp or self.channels_last or self.fold_bn or len(self.stages) > 1

    def settings(self) -> dict[str, Any]:
        """What ran, for the render's ``settings`` and a run's params."""
        return {
            "path": "fast" if self.fast else "plain",
            "amp": "bfloat16" if self.amp else "off",
            "channels_last": self.channels_last,
            "fold_bn": self.fold_bn,
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
    progressive: float | None = None,
    progressive_scale: float = PROGRESSIVE_SCALE,
    fits: Fits | None = None,
    native_bf16: bool | None = None,
) -> RenderPath:
    """Resolve the render options (None: the device's default) into a :class:`RenderPath`.

    Defaults: on CPU the fast path (bf16 autocast where native, channels-last input); on CUDA
    bf16 autocast where supported (as before); :data:`PROGRESSIVE_STEPS` everywhere.

    Args:
        device: where the render runs.
        size, steps: the requested image size and number of steps.
        amp, channels_last, fold_bn, progressive: explicit choices (see :func:`fold_batchnorm`);
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
    if progressive is None:
        progressive = PROGRESSIVE_STEPS
    if not 0.0 <= progressive < 1.0:
        raise ValueError(f"progressive must be in [0, 1), got {progressive}")
    if not 0.0 < progressive_scale <= 1.0:
        raise ValueError(f"progressive_scale must be in (0, 1], got {progressive_scale}")
    stages, note = _stages(size, steps, progressive, progressive_scale, fits)
    reasons = "; ".join(r for r in (reason, note) if r)
    return RenderPath(bool(amp), bool(channels_last), stages, reasons, bool(fold_bn))


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
        for prefix, seq in list(model.named_modules()):
            if not isinstance(seq, nn.Sequential):
                continue
            names = [f"{prefix}.{i}" if prefix else str(i) for i in range(len(seq))]
            for i in range(len(seq) - 1):
                conv, bn = seq[i], seq[i + 1]
                if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                    continue
                if conv.training or bn.training or names[i] in keep:
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


def path_params(
    device: torch.device | str, size: int, steps: int, amp: bool | None = None
) -> dict[str, Any]:
    """``render.*`` run params: the path :func:`~.render.render` takes on ``device`` with
    ``amp`` (None: its default; what a visualize run logs before it renders; each result's
    ``settings`` has the same)."""
    settings = plan(torch.device(device), size, steps, amp=amp).settings()
    return {f"render.{k}": v for k, v in settings.items() if v != ""}
