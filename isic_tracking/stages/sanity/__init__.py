"""``sanity``: the per-layer part of the sanity stage (the verdict for every pictured layer's top
filters); the stage's main runner is still :mod:`isic_tracking.tracking.sanity`."""
