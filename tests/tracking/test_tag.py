"""tracking/tag.py: every tag the project writes has one name, under the isic. prefix."""

from __future__ import annotations

from isic_tracking.tracking import tag


def test_tag_names_are_unique_and_prefixed() -> None:
    names = {k: v for k, v in vars(tag).items() if k.isupper() and isinstance(v, str)}
    assert len(set(names.values())) == len(names), "two constants name the same tag"
    assert all(v.startswith("isic.") for v in names.values())
    assert tag.dataset_digest("training") == "isic.dataset.training.digest"
