"""``filters``: the stage's newer parts beside its runner (``isic_tracking/tracking/filters.py``):
does removing a class's ranked filters lower its score (ablation), and where in an image do the
units respond (Network Dissection on the synthetic set's concept masks)."""
