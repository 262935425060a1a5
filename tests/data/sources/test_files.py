"""Image scanning: one directory scan, image extensions only, .jpg preferred."""

from __future__ import annotations

from PIL import Image

from isic_tracking.data.sources import (
    scan_images,
)
from tests.data.sources.helpers import (
    jpeg,
)


def test_scan_images_filters_extensions_and_prefers_jpg(tmp_path):
    jpeg(tmp_path / "a.JPG")
    jpeg(tmp_path / "b.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    (tmp_path / ".c.jpg").write_bytes(b"")
    (tmp_path / "d.txt").write_text("x")
    (tmp_path / "e.jpg").mkdir()
    files = scan_images(tmp_path)
    assert sorted(files) == ["a", "b"] and files["b"].endswith("b.jpg")
