"""Data layer: readers of the official ISIC layouts, synthetic data, cache, transforms, splits."""
