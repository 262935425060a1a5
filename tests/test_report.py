"""The study report's HTML: self-contained, no scripts, every item findable by id, text
escaped, images inlined."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import pandas as pd
from PIL import Image

from isic_tracking.report import Figure, Item, Report, Section, Table, render_html, slug


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), colour).save(buf, format="PNG")
    return buf.getvalue()


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _report(figure: bytes | None = None) -> Report:
    item = Item(
        "confusion-binary-timm-resnet18",
        "timm:resnet18 · binary",
        run_id="abc123",
        run_link="http://127.0.0.1:5000/#/experiments/1/runs/abc123",
        settings={"folds": "3"},
        verdicts=["sanity_verdict: closer than noise in 2 of 3 layers"],
        tables=[Table("per fold", pd.DataFrame({"fold": [0], "auc": [0.9]}), "data set d1")],
        figures=[Figure("figures/oof_confusion_matrix.png", figure or _png((200, 10, 10)))],
    )
    empty = Item("sanity-binary-x", "x · binary", missing="the chain has no sanity run")
    return Report(
        "Study <report>",
        ["2 chains & 1 task"],
        [Section("confusion", "Confusion matrices", "what <it> shows", [item, empty])],
        {"study run": "http://127.0.0.1:5000/#/experiments/1/runs/s1"},
    )


def test_html_is_self_contained_and_findable() -> None:
    page = render_html(_report())
    parsed = _Collect()
    parsed.feed(page)
    names = [t for t, _ in parsed.tags]
    assert "script" not in names and "link" not in names  # no JS, no external stylesheet
    ids = {a.get("id") for _, a in parsed.tags if a.get("id")}
    assert {"confusion", "confusion-binary-timm-resnet18", "sanity-binary-x"} <= ids
    imgs = [a["src"] for t, a in parsed.tags if t == "img"]
    assert len(imgs) == 1 and imgs[0].startswith("data:image/png;base64,")
    assert (
        base64.b64decode(imgs[0].split(",", 1)[1]) == _report().sections[0].items[0].figures[0].png
    )
    runs = [a for t, a in parsed.tags if t == "a" and a.get("data-run-id")]
    assert [a["data-run-id"] for a in runs] == ["abc123"]
    assert runs[0]["href"].endswith("/runs/abc123")
    assert "Study &lt;report&gt;" in page and "<report>" not in page  # escaped
    assert "the chain has no sanity run" in page and "data set d1" in page
    assert "<table" in page and "0.9" in page


def test_slug() -> None:
    assert slug("timm:ResNet18") == "timm-resnet18"
    assert slug("multiclass") == "multiclass"


def test_a_large_figure_is_inlined_as_a_smaller_jpeg_and_a_small_one_as_is() -> None:
    import numpy as np

    from isic_tracking.report import INLINE_PNG_LIMIT, inline_image

    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (400, 400, 4), dtype=np.uint8), "RGBA")
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    big = buf.getvalue()
    assert len(big) > INLINE_PNG_LIMIT
    mime, data = inline_image(big)
    assert mime == "image/jpeg" and len(data) < len(big)
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (400, 400) and im.mode == "RGB"
    small = _png((200, 10, 10))
    assert inline_image(small) == ("image/png", small)
    page = render_html(_report(figure=big))
    assert page.count("data:image/jpeg;base64,") == 1


def test_table_floats_show_four_significant_digits() -> None:
    frame = pd.DataFrame({"metric": ["auc", "tiny"], "estimate": [0.972222222, 0.000123456],
                          "high": [1.0, 0.5], "n": [60, 7]})  # fmt: skip
    item = Item("test-x", "x", tables=[Table("metrics", frame)])
    page = render_html(Report("r", [], [Section("test", "Test", "", [item])]))
    cells = [c.split("<")[0] for c in page.split("<td>")[1:]]
    assert cells == ["auc", "0.9722", "1", "60", "tiny", "0.0001235", "0.5", "7"]
