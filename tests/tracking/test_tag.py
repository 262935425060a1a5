"""tracking/tag.py: every tag the project writes has one name, under the isic. prefix (the
analysed model's ``model.*`` tags and the pipeline's ``stage.*`` keep the names runs already
carry)."""

from __future__ import annotations

from isic_tracking.tracking import tag


def test_tag_names_are_unique_and_prefixed() -> None:
    names = {k: v for k, v in vars(tag).items() if k.isupper() and isinstance(v, str)}
    assert len(set(names.values())) == len(names), "two constants name the same tag"
    older = {k for k in names if k.startswith("MODEL") and k != "MODEL_URI"} | {"STAGE_PREFIX"}
    assert all(v.startswith("isic.") for k, v in names.items() if k not in older)
    assert all(names[k].startswith(("model.", "stage.")) for k in older)
    assert tag.stage_of_pipeline("train") == "stage.train"
    assert tag.dataset_digest("training") == "isic.dataset.training.digest"
