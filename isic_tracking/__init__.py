"""isic_tracking: MLflow-tracked training and interpretability for ISIC skin-lesion classification."""

__version__ = "0.1.0"
