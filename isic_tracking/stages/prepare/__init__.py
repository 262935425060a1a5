"""``prepare``: read a data layout, make the test set, cache the images and log the manifest
(the runner :mod:`.runner`; the reading itself is :mod:`isic_tracking.data.prepare`)."""
