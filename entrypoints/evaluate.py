"""``evaluate``: the registered model on its test set (the split=test rows of its manifest:
another data set, the data's own test rows or the held-out split of ``prepare``). ROC AUC,
average precision, balanced accuracy, accuracy, sensitivity and specificity (binary; macro
metrics and a per-class table for multiclass), each with a 95 % BCa bootstrap interval; the
confusion matrix, precision-recall and calibration curves; the result goes into the
registered version's description."""

from __future__ import annotations

from entrypoints._common import ConfigStage
from isic_tracking.stages.evaluate.config import EvaluateConfig

STAGE = ConfigStage(
    "evaluate", __doc__, EvaluateConfig, "isic_tracking.stages.evaluate.runner:run_evaluate"
)
build_parser = STAGE.build_parser
main = STAGE.main

if __name__ == "__main__":
    raise SystemExit(main())
