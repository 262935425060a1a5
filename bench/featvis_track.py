"""Activation per step for any engine, measured identically, and the time it took to get there.

Every engine reports ``on_step(step, images)`` (``images()`` gives the current untransformed
image at full size). Every ``every`` steps (and at the last) :class:`Tracker` keeps a copy and
the process CPU time / wall time so far, minus its own time; after the timed run
:meth:`Tracker.curve` evaluates every copy the same way (``featvis.evaluate``: ImageNet
normalization, the unit's spatial mean, fp32, weights frozen).

An engine that renders channels one after another (torch-dreams) reports several runs that each
restart at step 1: the cost of reaching step s is the sum over runs of each run's time to its
step s (a run starts when the previous one reported its last step).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


def clock() -> tuple[float, float]:
    """(process CPU seconds, wall seconds)."""
    return time.process_time(), time.perf_counter()


@dataclass
class Tracker:
    """Snapshots every ``every`` steps of runs of ``steps`` steps."""

    steps: int
    every: int = 10
    runs: list[dict[int, tuple[float, float, torch.Tensor]]] = field(default_factory=list)
    starts: list[tuple[float, float]] = field(default_factory=list)
    overhead: list[float] = field(default_factory=lambda: [0.0, 0.0])
    _last: tuple[float, float] = (0.0, 0.0)

    def begin(self) -> None:
        """Call just before the engine starts."""
        self._last = clock()

    def _now(self) -> tuple[float, float]:
        cpu, wall = clock()
        return cpu - self.overhead[0], wall - self.overhead[1]

    def __call__(self, step: int, images: Callable[[], torch.Tensor]) -> None:
        if step % self.every and step != self.steps:
            return
        now = self._now()
        if not self.runs or step <= max(self.runs[-1]):  # a new run restarts its steps
            self.runs.append({})
            self.starts.append(self._last)
        t0 = clock()
        self.runs[-1][step] = (now[0], now[1], images().float().cpu().clone())
        t1 = clock()
        self.overhead[0] += t1[0] - t0[0]
        self.overhead[1] += t1[1] - t0[1]
        if step == self.steps:
            self._last = self._now()

    def total(self) -> tuple[float, float]:
        """(CPU s, wall s) of the whole render, without the tracker's own time."""
        return self.cost(self.steps)

    def cost(self, step: int) -> tuple[float, float]:
        """(CPU s, wall s) to bring every run to ``step``."""
        cpu = sum(run[step][0] - start[0] for run, start in zip(self.runs, self.starts))
        wall = sum(run[step][1] - start[1] for run, start in zip(self.runs, self.starts))
        return cpu, wall

    def curve(self, evaluate: Callable[[torch.Tensor], torch.Tensor]) -> dict[int, float]:
        """Mean activation (over all channels) at every snapshot step, via ``evaluate``."""
        steps = sorted(set.intersection(*(set(r) for r in self.runs)))
        return {s: float(evaluate(torch.cat([r[s][2] for r in self.runs])).mean()) for s in steps}

    def time_to(self, curve: dict[int, float], target: float) -> float | None:
        """CPU seconds to the first snapshot whose mean activation is >= ``target``."""
        for step in sorted(curve):
            if curve[step] >= target:
                return self.cost(step)[0]
        return None
