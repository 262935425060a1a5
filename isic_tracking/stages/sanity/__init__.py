"""``sanity``: are a model's feature visualizations more than noise? The stage's runner
(:mod:`.runner`) compares the pictures a ``visualize`` run logged (which ones: :mod:`.sets`)
with natural images and noise along the network's path (figures: :mod:`.plots`), and logs the
per-layer verdict for every pictured layer's top filters (:mod:`.per_layer`, :mod:`.pictures`;
logged by :mod:`.runner_per_layer`, figure :mod:`.plots_per_layer`)."""
