"""Feature visualization: our batched engine vs torch-dreams, same request, side by side.

Same model, layer, channels, image size and steps for both engines:
  * isic:          ``render`` with B channels per forward (one target per batch element),
                   Fourier parameterization + the thesis's transforms (preset ``fourier``);
  * torch_dreams:  torch-dreams 4.0's ``Dreamer.render`` once per channel, as the thesis ran it
                   (weights keep ``requires_grad``, as the library leaves them).
Optionally (``--td-frozen``) torch-dreams again with frozen weights, to show how much of the gain
comes from not computing weight gradients.

``--cpu-bf16`` adds our engine under bfloat16 autocast (CPUs with AVX512-BF16/AMX).

The activation reached is measured the same way for both: the channel's mean (pre-ReLU) output
for the final image, without transforms (``featvis.evaluate``). Every engine runs once briefly
(2 steps) as a warm-up; then engines alternate within each repeat so load changes hit both;
medians over repeats. On CPU the table also gives process CPU time, which, with
``--threads 1``, stays meaningful on a shared machine where wall time does not.

    python bench/featvis.py                                   # AlexNet last conv, 224 px, CPU
    python bench/featvis.py --threads 1 --cpu-bf16 --td-frozen
    python bench/featvis.py --device cuda --arch vgg16 --size 256 --channels 64 --batch-size 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis import channel, render
from isic_tracking.interpret.featvis.dreams import render_torch_dreams
from isic_tracking.interpret.featvis.presets import preset
from isic_tracking.models import create_model, resolve_layers


def load_model(arch: str, weights: str) -> tuple[torch.nn.Module, str]:
    """ImageNet weights when cached (``weights=auto``) or asked (``pretrained``), else random."""
    if weights in ("auto", "pretrained"):
        try:
            return create_model(arch, 1000, pretrained=True), "ImageNet (torch cache)"
        except IsicInputError:
            if weights == "pretrained":
                raise
    torch.manual_seed(0)
    return create_model(arch, 1000), "random init (seed 0)"


def run_isic(model, layer, chans, args, device, amp):
    acts = []
    for i in range(0, len(chans), args.batch_size):
        res = render(
            model,
            channel(layer, chans[i : i + args.batch_size]),
            size=args.size,
            steps=args.steps,
            seed=args.seed,
            device=device,
            amp=amp,
            record_every=0,
            **preset("fourier"),
        )
        acts.append(res.activation)
    return torch.cat(acts)


def run_dreams(model, layer, chans, args, device, frozen):
    res = render_torch_dreams(
        model, layer, chans, size=args.size, steps=args.steps, seed=args.seed,
        device=device, freeze_model=frozen,
    )  # fmt: skip
    return res.activation


def timed(fn, device) -> tuple[float, float, torch.Tensor]:
    """(wall seconds, process CPU seconds, result) of ``fn()``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", default="alexnet")
    p.add_argument("--layer", default="last", help="layer name or first/last (default last conv)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--channels", type=int, default=8, help="channels 0..N-1 are rendered")
    p.add_argument("--batch-size", type=int, default=8, help="channels per forward (ours)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave)")
    p.add_argument("--weights", choices=["auto", "pretrained", "random"], default="auto")
    p.add_argument(
        "--cpu-bf16", action="store_true", help="CPU: also our engine under bf16 autocast"
    )
    p.add_argument("--td-frozen", action="store_true", help="also torch-dreams, frozen weights")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, weights = load_model(args.arch, args.weights)
    model.to(device).eval()
    layer = resolve_layers(model, args.layer)[0]
    chans = list(range(args.channels))

    amp_default = device.type == "cuda"
    engines = {
        "isic": lambda: run_isic(model, layer, chans, args, device, amp_default),
        "torch_dreams": lambda: run_dreams(model, layer, chans, args, device, False),
    }
    if args.cpu_bf16 and device.type == "cpu":
        engines["isic (bf16 autocast)"] = lambda: run_isic(model, layer, chans, args, device, True)
    if args.td_frozen:
        engines["torch_dreams (frozen weights)"] = lambda: run_dreams(
            model, layer, chans, args, device, True
        )
    steps, args.steps = args.steps, 2
    for fn in engines.values():  # warm-up: allocator, oneDNN / cuDNN kernels, lazy imports
        fn()
    args.steps = steps
    walls: dict[str, list[float]] = {k: [] for k in engines}
    cpus: dict[str, list[float]] = {k: [] for k in engines}
    acts: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for name, fn in engines.items():
            wall, cpu, acts[name] = timed(fn, device)
            walls[name].append(wall)
            cpus[name].append(cpu)

    print(
        f"\n{args.arch} `{layer}`, {args.size} px, {args.steps} steps, {len(chans)} channels, "
        f"weights: {weights}, device: {device}, threads: {torch.get_num_threads()}, "
        f"isic batch {args.batch_size}, repeats {args.repeats} (median), "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    cpu_cols = device.type == "cpu"
    head = "| engine | wall s | channels/s (wall) | speed-up (wall) |"
    head += " CPU s | speed-up (CPU time) |" if cpu_cols else ""
    print(head + " mean activation reached |")
    print("|---|" + "---:|" * (head.count("|") - 1))
    base_wall = statistics.median(walls["torch_dreams"])
    base_cpu = statistics.median(cpus["torch_dreams"])
    for name in engines:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        row = f"| {name} | {wall:.1f} | {len(chans) / wall:.3f} | {base_wall / wall:.1f}x |"
        row += f" {cpu:.1f} | {base_cpu / cpu:.1f}x |" if cpu_cols else ""
        print(row + f" {acts[name].mean():.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
