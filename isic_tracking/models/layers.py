"""Stable layer names (``features.0``, ``layer4.2.conv3``) and lookup with helpful errors."""

from __future__ import annotations

from torch import nn

from isic_tracking.errors import IsicInputError


def conv_layers(model: nn.Module) -> list[str]:
    """Qualified names of every ``Conv2d`` in forward-definition order, first to last."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``; an unknown name lists the conv layers."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        convs = conv_layers(model)
        raise IsicInputError(
            f"layer {name!r} does not exist in {type(model).__name__}; conv layers are: "
            f"{', '.join(convs)}"
        ) from None


def resolve_layers(
    model: nn.Module, spec: str | list[str] | None, default: str = "last"
) -> list[str]:
    """Turn a user layer spec into layer names.

    ``first``, ``last``, ``all`` (every conv), ``named`` (every named leaf module) or a
    comma-separated list mixing those keywords and explicit names, deduplicated in order.
    """
    if spec is None or spec == "" or spec == []:
        spec = default
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    convs = conv_layers(model)
    if not convs:
        raise IsicInputError(f"{type(model).__name__} has no Conv2d layer")
    names: list[str] = []
    for item in (s.strip() for s in items):
        if item == "first":
            names.append(convs[0])
        elif item == "last":
            names.append(convs[-1])
        elif item == "all":
            names.extend(convs)
        elif item == "named":
            names.extend(n for n, m in model.named_modules() if n and not list(m.children()))
        elif item:
            get_layer(model, item)
            names.append(item)
    return list(dict.fromkeys(names))
