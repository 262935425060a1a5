"""Streaming activation statistics vs collecting full feature maps (the thesis's method).

For VGG16 (random init) and its last conv layer (``features.28``) over N images, compare
  * stream: ``activation_stats`` (hooks reduce every map to max/mean/argmax per filter inside
    the forward, the forward stops at the layer), and
  * full:   the thesis's method: run the network up to the layer, keep every feature map of
    every image ([N, C, H, W], as Keras' ``Model(inputs, layer.output).predict`` returns),
    then reduce.
Both compute the same statistics from the same images (checked).

Peak memory: every (method, N) runs in a fresh worker process, so one measurement cannot
inherit another's heap. The worker builds the model, runs one warm-up batch, records its
resident set (VmRSS), resets the kernel's high-water mark (``echo 5 > /proc/self/clear_refs``)
and reports ``VmHWM - baseline`` after the run: the extra resident memory the method needed
at its peak, whatever allocated it. tracemalloc would be wrong here: it only sees Python's
allocator, not torch's CPU allocator where feature maps live. On CUDA the worker also reports
``torch.cuda.max_memory_allocated``. Workers run with fixed glibc malloc thresholds (see
``_worker_env``) so freed feature maps leave the resident set. Images are generated per batch
(never held), so the input pipeline costs the same for every N.

Speed: wall-clock images/s and process CPU time per image; on a shared machine the CPU time
is the steadier figure (it does not grow while other processes hold the cores).

    python bench/activations.py                      # N = 250 500 1000, 64 px, CPU
    python bench/activations.py --image-size 224 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import torch

LAYER = "features.28"


def _proc_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _batches(n: int, batch_size: int, size: int, seed: int):
    """Normalized random images, generated batch by batch (memory independent of n)."""
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        yield torch.randn(b, 3, size, size, generator=g), torch.zeros(b, dtype=torch.long)


def _full_maps(model, n, args, device):
    """The thesis's method: keep every feature map, then reduce."""
    trunk = model.features[: int(LAYER.split(".")[1]) + 1]  # up to and including the layer
    maps = []
    with torch.inference_mode():
        for x, _ in _batches(n, args.batch_size, args.image_size, args.seed):
            maps.append(trunk(x.to(device)).cpu())
        full = torch.cat(maps)  # [N, C, H, W], like Keras' predict
        del maps
        flat = full.flatten(2)
        return flat.amax(2), flat.mean(2), full.numel() * full.element_size()


def _stream(model, n, args, device):
    from isic_tracking.interpret.activations import activation_stats

    s = activation_stats(
        model, _batches(n, args.batch_size, args.image_size, args.seed), [LAYER], device
    )[LAYER]
    kept = sum(t.numel() * t.element_size() for t in (s.max, s.mean, s.argmax))
    return s.max, s.mean, kept


def worker(args) -> None:
    import torchvision

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).to(device).eval()
    run = _stream if args.method == "stream" else _full_maps
    run(model, args.batch_size, args, device)  # warm-up: kernels, allocator, lazy inits
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = _proc_kib("VmRSS")
    reset = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    mx, mean, kept = run(model, args.n, args, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    peak = _proc_kib("VmHWM")  # without the reset it includes the set-up's peak
    out = {
        "method": args.method,
        "n": args.n,
        "seconds": seconds,
        "images_per_s": args.n / seconds,
        "cpu_ms_per_image": 1000 * cpu_seconds / args.n,
        "peak_extra_mib": (peak - base) / 1024,
        "hwm_reset": reset,
        "checksum": float(mx.double().sum() + mean.double().sum()),
        "kept_mib": kept / 2**20,
    }
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(out))


def _worker_env() -> dict[str, str]:
    """Fixed glibc malloc thresholds: big blocks (every feature map) are mmap-ed and go back to
    the OS when freed, so the resident set follows the live tensors. Without this glibc raises
    its mmap threshold after the first free and later maps land in a heap that is not trimmed,
    which makes peaks depend on allocation history rather than on the method."""
    env = dict(os.environ)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(128 * 1024))
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(128 * 1024))
    return env


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[250, 500, 1000])
    p.add_argument("--image-size", type=int, default=64, help="64 on CPU; the thesis used 224")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=1, help="runs per (method, N); medians")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=["stream", "full"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.method:  # worker mode
        args.n = args.n[0]
        worker(args)
        return 0

    results: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.repeats):
        for n in args.n:
            for method in ("stream", "full"):  # interleaved, same conditions
                cmd = [sys.executable, os.path.abspath(__file__), "--method", method]
                cmd += ["--n", str(n), "--image-size", str(args.image_size)]
                cmd += ["--batch-size", str(args.batch_size), "--device", args.device]
                cmd += ["--threads", str(args.threads), "--seed", str(args.seed)]
                out = subprocess.run(
                    cmd, check=True, capture_output=True, text=True, env=_worker_env()
                ).stdout
                results.setdefault((method, n), []).append(json.loads(out.strip().splitlines()[-1]))

    fmap = args.image_size // 16
    print(
        f"\nVGG16 (random init) `{LAYER}` (512 x {fmap} x {fmap} maps), {args.image_size} px, "
        f"batch {args.batch_size}, device {args.device}, {args.threads} threads, "
        f"median of {args.repeats}\n"
    )
    cuda = args.device.startswith("cuda")
    cols = ["N", "method", "images/s (wall)", "CPU ms / image", "peak extra RSS (MiB)"]
    cols += ["CUDA peak (MiB)"] if cuda else []
    cols += ["kept (MiB)", "full / stream CPU", "full / stream peak"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for n in args.n:
        med = {
            m: {
                k: statistics.median(run[k] for run in results[(m, n)])
                for k in results[(m, n)][0]
                if k != "method"
            }
            for m in ("stream", "full")
        }
        s, f = med["stream"], med["full"]
        if abs(s["checksum"] - f["checksum"]) > 1e-3 * max(1.0, abs(f["checksum"])):
            raise SystemExit(f"stream and full statistics differ at N={n}: {s} vs {f}")
        for m in ("stream", "full"):
            r = med[m]
            cells = [str(n), m, f"{r['images_per_s']:.1f}", f"{r['cpu_ms_per_image']:.0f}"]
            cells.append(f"{r['peak_extra_mib']:.1f}")
            if cuda:
                cells.append(f"{r['cuda_peak_mib']:.1f}")
            cells.append(f"{r['kept_mib']:.2f}")
            if m == "stream":
                cells += [
                    f"{f['cpu_ms_per_image'] / s['cpu_ms_per_image']:.2f}x",
                    f"{f['peak_extra_mib'] / max(s['peak_extra_mib'], 1e-9):.1f}x",
                ]
            else:
                cells += ["", ""]
            print("| " + " | ".join(cells) + " |")
    if not all(r["hwm_reset"] for rs in results.values() for r in rs):
        print("\n(note: /proc/self/clear_refs unavailable: peaks include model set-up)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
