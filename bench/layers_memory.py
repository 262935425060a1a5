"""Where the ``layers`` computation spends time and memory: every pass, batch by batch.

Runs :func:`~isic_tracking.stages.layers.compute.compare_layers` in this process on two
random-init models (a "fine-tuned" one and its "base") over synthetic 224 px images, with
freed memory kept as every stage keeps it (:mod:`isic_tracking.allocator`), and prints:

- per phase (the pass of both models, the reset and re-randomization passes, probes,
  bootstrap) wall, user and system seconds: CPU seconds per image that stay put as
  ``--images`` grows mean linear growth;
- glibc's heap, the largest it has been, at the start of every batch of every pass (from
  ``malloc_info``): where the peak is reached and whether it still grows once every pass's
  first batches have run;
- the process's peak resident memory (``ru_maxrss``).

    python -m bench.layers_memory --images 448 --batch_size 64          # VGG16, first,last
    python -m bench.layers_memory --images 128 --batch_size 16

To see the heap of an older commit, run the same command in a worktree of it
(``git worktree add /tmp/old <commit>``, then ``PYTHONPATH=/tmp/old``).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

if not __package__:  # run as a script: the repository root, so that `bench.` imports
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import isic_tracking.stages.layers.compute as compute  # noqa: E402
from isic_tracking.allocator import keep_freed_memory  # noqa: E402
from isic_tracking.models import create_model, resolve_layers  # noqa: E402

PHASES = ("_one_pass", "_swap_scores", "_probe", "_drop")


def heap_max_mib() -> int:
    """The largest glibc's heaps have been in this process (``malloc_info``'s "max"), MiB."""
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile(suffix=".xml") as tmp:
        handle = libc.fopen(tmp.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(handle))
        libc.fclose(ctypes.c_void_p(handle))
        text = Path(tmp.name).read_text()
    sizes = re.findall(r'<system type="max" size="(\d+)"/>\s*<aspace type="total"', text)
    return int(sizes[-1]) >> 20


def peak_rss_mib() -> int:
    """This process's peak resident memory, MiB (``ru_maxrss``, as the rehearsal reads it for
    each stage process; kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10


class _Images:
    """Re-iterable uint8 batches that say their image count (as ``DecodedImages`` does) and
    note the heap's maximum at the start of every batch, one list per pass."""

    def __init__(self, n: int, batch: int, size: int, seed: int = 1) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)
        self.y = (torch.rand(n, generator=gen) < 0.3).long()
        self.dataset, self.batch, self.passes = self.x, batch, []

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        heap: list[int] = []
        self.passes.append(heap)
        for i in range(0, len(self.x), self.batch):
            heap.append(heap_max_mib())
            yield self.x[i : i + self.batch], self.y[i : i + self.batch]
        heap.append(heap_max_mib())


def _timed(times: dict[str, list[float]], name: str, fn: Callable) -> Callable:
    def run(*args, **kwargs):
        w0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        out = fn(*args, **kwargs)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        t = times.setdefault(name, [0.0, 0.0, 0.0])
        t[0] += time.perf_counter() - w0
        t[1] += r1.ru_utime - r0.ru_utime
        t[2] += r1.ru_stime - r0.ru_stime
        return out

    return run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="vgg16")
    p.add_argument("--images", type=int, default=448)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--layers", default="first,last")
    args = p.parse_args(argv)
    print(f"freed memory kept: {keep_freed_memory()}; {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads")  # fmt: skip
    torch.manual_seed(0)
    model, base = create_model(args.arch, 1).eval(), create_model(args.arch, 1).eval()
    layers = tuple(resolve_layers(model, args.layers, default="all"))
    plan = compute.LayersPlan(layers, "binary", "roc_auc", (0.485, 0.456, 0.406),
                              (0.229, 0.224, 0.225), n_boot=200, fv_steps=0)  # fmt: skip
    images = _Images(args.images, args.batch_size, args.image_size)
    times: dict[str, list[float]] = {}
    originals = {name: getattr(compute, name) for name in PHASES}
    for name, fn in originals.items():
        setattr(compute, name, _timed(times, name, fn))
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        compute.compare_layers(model, base, lambda: images, plan)
    finally:
        for name, fn in originals.items():
            setattr(compute, name, fn)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(
        f"{args.arch} {','.join(layers)}, {args.images} images of {args.image_size} px, "
        f"batch {args.batch_size}: {wall:.1f} s wall, {cpu:.1f} CPU s "
        f"({cpu / args.images:.3f} per image), peak resident {peak_rss_mib()} MiB\n"
    )
    print("| phase | wall s | user s | system s | CPU s per image |\n|---|---:|---:|---:|---:|")
    for name, (w, u, s) in times.items():
        print(f"| {name.strip('_')} | {w:.1f} | {u:.1f} | {s:.1f} | {(u + s) / args.images:.3f} |")
    print("\nglibc heap, largest so far (MiB), at the start of each batch and at the end:")
    for k, heap in enumerate(images.passes):
        print(f"pass {k}: {heap}")


if __name__ == "__main__":
    main()
