"""Model-level sanity checks of feature visualizations: randomization and transferability.

- **Cascading model randomization** (Adebayo et al. 2018, "Sanity checks for saliency
  maps"): re-initialize the model's layers from the head downwards, one level more at a
  time, and render the same objectives with the same seed. A visualization that explains
  what the *trained* model learned must change once the weights it depends on are random;
  one that stays the same shows the method's prior (parameterization, regularizers), not
  the model. Similarity is reported per level as the Spearman correlation of the pixels and
  SSIM. A second render of the trained model with another seed gives the reference level:
  how similar two visualizations of the *same* model are.
- **Transferability** (Fel et al. 2023, "Unlocking feature visualization for deeper
  networks with magnitude constrained optimization"): the fraction of class-logit
  visualizations that a different model (another fold or architecture) assigns to the
  visualized class. Visualizations that carry class evidence, rather than adversarial
  noise specific to one network, transfer.

Rendering is injected (``render_fn(model, seed) -> images``) so this module does not
depend on a particular feature-visualization engine.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.inputs import to_model_input
from isic_tracking.interpret.similarity import similarity, ssim
from isic_tracking.models import conv_layers
from isic_tracking.utils import progress

#: ``render_fn(model, seed)`` -> ``[B, 3, H, W]`` in ``[0, 1]``: the same B objectives each call.
RenderFn = Callable[[nn.Module, int], Tensor]
TRAINED = "trained_other_seed"  # a metric-safe name


def parametrized_layers(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters directly, in definition (≈ forward) order."""
    return [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]


def cascade_levels(model: nn.Module, n_levels: int = 4) -> list[str]:
    """Default randomization cut points, top-down: the head, then conv layers down to the first.

    ``n_levels`` points: the last parametrized layer (the head), then conv layers evenly
    spaced from the last conv to the first (so the last level randomizes the whole model).
    """
    params = parametrized_layers(model)
    if not params:
        raise IsicInputError(f"{type(model).__name__} has no parameters to randomize")
    convs = conv_layers(model)
    picks: list[str] = [params[-1]]
    if convs and n_levels > 1:
        idx = np.linspace(len(convs) - 1, 0, n_levels - 1).round().astype(int)
        picks += [convs[i] for i in idx]
    return list(dict.fromkeys(picks))


def resolve_levels(model: nn.Module, spec: str) -> list[str]:
    """Randomization cut points: ``auto`` (:func:`cascade_levels`), ``none`` or layer names
    (checked to exist)."""
    if spec == "none":
        return []
    if spec == "auto":
        return cascade_levels(model)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    known = {n for n, _ in model.named_modules()}
    bad = [n for n in names if n not in known]
    if bad:
        raise IsicInputError(
            f"randomize: layer(s) {bad} do not exist in {type(model).__name__}; use auto, none "
            f"or names among its parametrized layers: {', '.join(parametrized_layers(model))}"
        )
    return names


@torch.no_grad()
def randomize_from(model: nn.Module, down_to: str, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every parametrized layer from ``down_to`` to the head re-initialized.

    Layers use their own ``reset_parameters`` (PyTorch's default init); a module without
    one gets ``N(0, 0.02)`` weights. The global RNG is left untouched.

    Args:
        model: the trained model (not modified).
        down_to: the shallowest layer to randomize (a name from :func:`parametrized_layers`
            or any module name: every parametrized layer at or after it is randomized).
        seed: seed of the new weights.
    """
    names = [n for n, _ in model.named_modules()]
    if down_to not in names:
        raise IsicInputError(
            f"layer {down_to!r} does not exist in {type(model).__name__}; parametrized layers: "
            f"{', '.join(parametrized_layers(model))}"
        )
    start = names.index(down_to)
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    todo = [n for n in parametrized_layers(out) if names.index(n) >= start]
    devices = [p.device for p in out.parameters() if p.device.type == "cuda"][:1]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for n in todo:
            m = modules[n]
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            else:
                for p in m.parameters(recurse=False):
                    p.normal_(0.0, 0.02)
    return out


def image_similarity(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel Spearman correlation and SSIM of image pairs ``(a[i], b[i])``: two ``[B]`` tensors."""
    rho = similarity(a.flatten(1).float(), b.flatten(1).float(), "spearman", paired=True)
    return rho, ssim(a.float(), b.float())


@dataclass
class RandomizationResult:
    """Output of :func:`cascading_randomization`.

    Attributes:
        table: one row per (level, item): ``level, order, randomized_layers, item,
            spearman, ssim``; ``order`` 0 is the trained model with another seed.
        images: ``{level: [B, 3, H, W]}``, including ``"trained"``.
    """

    table: pd.DataFrame
    images: dict[str, Tensor]


def cascading_randomization(
    model: nn.Module,
    render_fn: RenderFn,
    levels: Sequence[str] | None = None,
    seed: int = 0,
    seed_baseline: bool = True,
) -> RandomizationResult:
    """Visualizations of progressively randomized models vs the trained model's (Adebayo 2018).

    Args:
        model: the trained model.
        render_fn: renders the fixed objectives for a model and a seed.
        levels: cut points, top-down (default :func:`cascade_levels`); level ``l`` randomizes
            every parametrized layer from ``l`` up to the head, so levels accumulate.
        seed: render seed (the same for every model) and weight seed.
        seed_baseline: also render the trained model with ``seed + 1`` (reference level).

    Returns:
        :class:`RandomizationResult`.
    """
    levels = list(levels) if levels else cascade_levels(model)
    params = parametrized_layers(model)
    names = [n for n, _ in model.named_modules()]
    reference = render_fn(model, seed).detach().cpu()
    images: dict[str, Tensor] = {"trained": reference}
    rows = []

    def compare(level: str, order: int, n_random: int, imgs: Tensor) -> None:
        imgs = imgs.detach().cpu()
        images[level] = imgs
        rho, s = image_similarity(reference, imgs)
        for i in range(len(rho)):
            rows.append(
                dict(
                    level=level,
                    order=order,
                    randomized_layers=n_random,
                    item=i,
                    spearman=float(rho[i]),
                    ssim=float(s[i]),
                )
            )

    if seed_baseline:
        compare(TRAINED, 0, 0, render_fn(model, seed + 1))
    for k, level in enumerate(progress(levels, desc="randomization"), start=1):
        randomized = randomize_from(model, level, seed=seed)
        n_random = sum(names.index(p) >= names.index(level) for p in params)
        compare(level, k, n_random, render_fn(randomized, seed))
        del randomized
    return RandomizationResult(pd.DataFrame(rows), images)


# --------------------------------------------------------------------------- transferability


@torch.no_grad()
def predict(
    model: nn.Module,
    images: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> Tensor:
    """Class probabilities ``[B, K]`` for images in ``[0, 1]``; one logit means ``K = 2``."""
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = to_model_input(images[start : start + batch_size].to(device), mean, std, image_size)
            logits = model(x).float()
            if logits.shape[1] == 1:
                p = torch.sigmoid(logits)
                out.append(torch.cat([1 - p, p], dim=1))
            else:
                out.append(torch.softmax(logits, dim=1))
    finally:
        model.train(was_training)
    return torch.cat(out).cpu()


def transferability(
    reference_model: nn.Module,
    images: Tensor,
    target: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Which class-logit visualizations another model assigns to their target class (Fel 2023).

    Args:
        reference_model: a different trained model (another fold or architecture).
        images: ``[B, 3, H, W]`` class-logit visualizations in ``[0, 1]``.
        target: ``[B]`` the class each one maximizes.
        mean, std, image_size: the *reference* model's input normalization and size.

    Returns:
        One row per image: ``item, target, predicted, prob_target, transferred``; the
        transferability is ``table["transferred"].mean()``.
    """
    probs = predict(
        reference_model,
        images,
        mean=mean,
        std=std,
        image_size=image_size,
        batch_size=batch_size,
        device=device,
    )
    target = target.long().cpu()
    if int(target.max()) >= probs.shape[1]:
        raise IsicInputError(
            f"target class {int(target.max())} does not exist in the reference model "
            f"({probs.shape[1]} classes): compare models of the same task"
        )
    pred = probs.argmax(dim=1)
    return pd.DataFrame(
        {
            "item": np.arange(len(target)),
            "target": target.numpy(),
            "predicted": pred.numpy(),
            "prob_target": probs.gather(1, target[:, None])[:, 0].numpy(),
            "transferred": (pred == target).numpy(),
        }
    )


# --------------------------------------------------------------------------- figures


def plot_randomization(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Spearman and SSIM (mean ± std over objectives) per randomization level, top-down."""
    g = table.groupby(["order", "level"], sort=True)[["spearman", "ssim"]]
    mean, std = g.mean().reset_index(), g.std().reset_index().fillna(0)
    fig = Figure(figsize=(max(6.0, 0.6 * len(mean) + 3), 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(mean))
    for col, color in (("spearman", "C3"), ("ssim", "C0")):
        ax.errorbar(x, mean[col], yerr=std[col], marker="o", capsize=3, color=color, label=col)
    ax.set_xticks(
        x, [f"{lv}\n(down to)" if o else lv for o, lv in zip(mean["order"], mean["level"])]
    )
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.set_ylim(-0.2, 1.05)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("randomized from the head down to")
    ax.set_ylabel("similarity to the trained model's visualization")
    ax.set_title(title or "Cascading model randomization (Adebayo et al. 2018)")
    ax.legend(fontsize=8)
    return fig


def plot_randomization_images(
    images: dict[str, Tensor], labels: Sequence[str] | None = None, max_items: int = 6
) -> Figure:
    """Grid: one row per objective, one column per model (trained, then each level)."""
    cols = list(images)
    n = min(max_items, images[cols[0]].shape[0])
    fig = Figure(figsize=(1.6 * len(cols), 1.6 * n + 0.6), layout="constrained")
    axes = fig.subplots(n, len(cols), squeeze=False)
    for j, col in enumerate(cols):
        for i in range(n):
            ax = axes[i, j]
            ax.imshow(images[col][i].permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(col, fontsize=7)
            if j == 0 and labels is not None:
                ax.set_ylabel(labels[i], fontsize=7)
    return fig
