"""Model factory over torchvision and timm, and stable conv-layer lookup."""

from isic_tracking.models.factory import available_archs, check_arch, create_model, model_config
from isic_tracking.models.layers import conv_layers, get_layer, resolve_layers

__all__ = [
    "available_archs",
    "check_arch",
    "conv_layers",
    "create_model",
    "get_layer",
    "model_config",
    "resolve_layers",
]
