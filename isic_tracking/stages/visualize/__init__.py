"""``visualize``: feature visualization of a model's filters and class logits. The stage's
runner (:mod:`.runner`) renders what :mod:`.targets` picks and logs what :mod:`.report` makes
of the renders; the rendering itself is :mod:`isic_tracking.interpret.featvis`."""
