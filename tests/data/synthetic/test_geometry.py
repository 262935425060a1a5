"""Painting geometry: unit coordinates centred on the image, smooth-noise interpolation."""

from __future__ import annotations

import numpy as np

from isic_tracking.data.synthetic.geometry import canvas, interp, sigmoid


def test_canvas_unit_coordinates_are_centred_and_scaled_by_half_the_short_side():
    c = canvas(40, 60)
    assert c.x.shape == (40, 60) and c.scale == 20
    assert np.isclose(c.x.mean(), 0, atol=1e-6) and np.isclose(c.y.mean(), 0, atol=1e-6)
    assert np.isclose(c.y.max(), 1 - 0.5 / 20) and np.isclose(c.x.max(), 1.5 - 0.5 / 20)
    assert c.px(0, 0) == (30, 20)
    assert canvas(40, 60) is c  # cached per size


def test_interp_rows_are_convex_weights_hitting_both_ends():
    m = interp(10, 4)
    assert m.shape == (10, 4) and np.allclose(m.sum(1), 1) and (m >= 0).all()
    low = np.array([1.0, 2.0, 5.0, 3.0], np.float32)
    out = m @ low
    assert np.isclose(out[0], 1) and np.isclose(out[-1], 3) and out.max() <= 5


def test_sigmoid_saturates_without_overflow():
    with np.errstate(over="raise"):
        s = sigmoid(np.array([-1e4, 0.0, 1e4], np.float32))
    assert np.allclose(s, [0, 0.5, 1], atol=1e-9)
