"""Time the path-similarity computation of the ``sanity`` stage (issue 7).

VGG16 (random init), V visualizations x N natural images (random tensors: the content does
not change the cost), every conv layer (13), spatially mean-pooled activation vectors.
Measured side by side in one process:

  * forward:   ``activation_vectors`` for the V + N images, one hooked forward per batch
               (stops after the last conv, the classifier never runs);
  * ours:      the similarity math on the collected vectors: visualization vs natural
               (``path_similarity``), both natural baselines (N x N per layer) and the
               layer x layer correlation, batched torch ops on the device;
  * per-pair:  the same visualization vs natural numbers with one ``scipy.stats.spearmanr``
               call per (visualization, image, layer), the straightforward way (checked
               equal to ours); the N x N baselines are extrapolated from its per-call time
               rather than run.

    python bench/sanity.py                                 # VGG16, 5 x 200, 224 px, CPU
    python bench/sanity.py --image-size 64 --n-natural 50  # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from scipy import stats

from isic_tracking.interpret.sanity import (
    activation_vectors,
    layer_correlation,
    natural_baselines,
    path_similarity,
)
from isic_tracking.models import conv_layers, create_model
from isic_tracking.utils import resolve_device

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", default="vgg16")
    p.add_argument("--n-vis", type=int, default=5)
    p.add_argument("--n-natural", type=int, default=200)
    p.add_argument("--n-classes", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=25)
    p.add_argument("--metric", default="spearman")
    p.add_argument("--repeats", type=int, default=5, help="repeats of the similarity math")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    model = create_model(args.arch, args.n_classes, pretrained=False).to(device).eval()
    layers = conv_layers(model)
    g = torch.Generator().manual_seed(args.seed)
    size = args.image_size
    natural = torch.rand(args.n_natural, 3, size, size, generator=g)
    vis = torch.rand(args.n_vis, 3, size, size, generator=g)
    nat_c = torch.arange(args.n_natural) % args.n_classes
    vis_c = torch.arange(args.n_vis) % args.n_classes
    kw = dict(layers=layers, mean=MEAN, std=STD, batch_size=args.batch_size, device=device)

    with torch.no_grad():  # warm-up batch (allocator, kernels)
        activation_vectors(model, natural[: args.batch_size], **kw)
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    nat = activation_vectors(model, natural, **kw)
    va = activation_vectors(model, vis, **kw)
    _sync(device)
    t_forward, c_forward = time.perf_counter() - t0, time.process_time() - c0

    def ours():
        s = path_similarity(va, nat, vis_c, nat_c, args.metric)
        b = natural_baselines(nat, nat_c, args.metric)
        c = layer_correlation(va, args.metric) if args.n_vis >= 3 else None
        _sync(device)
        return s, b, c

    def vis_only():
        out = path_similarity(va, nat, vis_c, nat_c, args.metric)
        _sync(device)
        return out

    def timed(fn):
        fn()  # warm-up
        wall, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return statistics.median(wall), statistics.median(cpu)

    t_ours, c_ours = timed(ours)
    t_ours_vis, c_ours_vis = timed(vis_only)
    s = vis_only()

    # per-pair scipy: visualization vs natural of the same class, every layer
    t0, c0 = time.perf_counter(), time.process_time()
    ref = np.zeros((len(layers), args.n_vis))
    calls = 0
    for li, layer in enumerate(layers):
        a, b = va[layer].cpu().numpy(), nat[layer].cpu().numpy()
        for v in range(args.n_vis):
            rho = [
                stats.spearmanr(a[v], b[n]).statistic
                for n in range(args.n_natural)
                if nat_c[n] == vis_c[v]
            ]
            calls += len(rho)
            ref[li, v] = np.nanmean(rho)
    t_pairs, c_pairs = time.perf_counter() - t0, time.process_time() - c0
    err = float(np.nanmax(np.abs(ref - s.cpu().numpy())))
    per_call = t_pairs / calls
    n = args.n_natural
    baseline_calls = len(layers) * n * (n - 1)  # every ordered natural pair, every layer
    t_pairs_all = t_pairs + per_call * baseline_calls

    dims = [nat[ly].shape[1] for ly in layers]
    print(
        f"\n{args.arch} (random init), {args.n_vis} visualizations x {n} natural images, "
        f"{len(layers)} conv layers (vector sizes {min(dims)}-{max(dims)}, mean-pooled), "
        f"{size} px, metric {args.metric}, device {device}, "
        f"torch threads {torch.get_num_threads()}; max |ours - scipy| = {err:.1e}\n"
    )
    print("| step | wall (s) | CPU (s) | note |")
    print("|---|---:|---:|---|")
    print(
        f"| forward passes ({n + args.n_vis} images, hooks on all conv layers) | "
        f"{t_forward:.2f} | {c_forward:.2f} | {(n + args.n_vis) / t_forward:.1f} images/s |"
    )
    print(
        f"| ours: vis vs natural, all layers | {t_ours_vis:.4f} | {c_ours_vis:.4f} | "
        f"median of {args.repeats} |"
    )
    print(
        f"| per-pair scipy.stats.spearmanr: vis vs natural, all layers | {t_pairs:.2f} | "
        f"{c_pairs:.2f} | {calls} calls; {t_pairs / t_ours_vis:.0f}x our wall time |"
    )
    print(
        f"| ours: vis vs natural + both natural baselines + layer correlation | {t_ours:.4f} | "
        f"{c_ours:.4f} | median of {args.repeats}; per-pair scipy would need "
        f"~{t_pairs_all:.0f} s ({t_pairs_all / t_ours:.0f}x) |"
    )
    print(
        f"| total (forward + ours, all comparisons) | {t_forward + t_ours:.2f} | "
        f"{c_forward + c_ours:.2f} | similarity = "
        f"{100 * t_ours / (t_forward + t_ours):.1f}% of the wall time |"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n1-min load average at the end: {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
