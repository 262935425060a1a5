"""A small ISIC-like data set in the official layouts: the demo data of every stage and the
fixture of the tests.

``make_synthetic(out, n_images=240, seed=0, image_size=128)`` writes::

    out/isic2020/  train.csv, jpeg/train/<image_name>.jpg, ISIC_2020_Training_Duplicates.csv
    out/isic2019/  ISIC_2019_Training_GroundTruth.csv, ISIC_2019_Training_Metadata.csv,
                   ISIC_2019_Training_Input/<image>.jpg
    out/isic2016/  ISBI2016_ISIC_Part3_Test_GroundTruth.csv, ISBI2016_ISIC_Part3_Test_Data/*.jpg
    out/<layout>/synthetic_truth.csv   image_id,artifact (the artifact drawn on each image)
    out/<layout>/masks/<image stem>.png where the lesion and the artifact are (bit-packed,
                                        see :mod:`.masks`)

Sizes for ``n = n_images``: ISIC 2020 gets ``n`` rows (2 of them listed duplicates, byte copies
of another image; 2-6 images per patient; ~27 % malignant so small k-folds work, the real set
has 1.8 %); ISIC 2019 gets ``max(n, 64)`` images over the 8 classes (at least 8 each, the rest
weighted by the square root of the real class counts; 1-3 images per lesion, some without a
lesion id; ~3 % with ``_downsampled`` ids at 4:3 size); ISIC 2016 gets ``max(n // 4, 8)`` test
images (~30 % malignant) at 4:3 size. 35 % of the images of each layout carry one artifact,
the six kinds in turn (unless a shortcut is planted: ``shortcut_artifact``/``shortcut_rate``
make one artifact co-occur with malignancy, see :mod:`.shortcut`). Everything is derived from ``seed``: the same seed gives byte-identical
CSVs and identical images.

The signal is learnable on purpose: malignant (MEL) lesions are large, irregular, asymmetric and
multi-coloured; benign (NV) ones round and uniformly brown; each ISIC 2019 class has its own
colour, shape and texture family (see :mod:`.lesions`). The artifacts are drawn as they look in
dermoscopy (:mod:`.artifacts`), so outlier and filter analyses can be checked against
``synthetic_truth.csv``.

Modules: painting -- :mod:`.geometry` (canvas, masks), :mod:`.lesions`, :mod:`.artifacts`,
:mod:`.painting` (one image), :mod:`.masks` (where each concept is), :mod:`.shortcut` (the planted shortcut); layouts -- :mod:`.layouts` (the official tables and the plan of
each image), :mod:`.generate` (paint and write). File names and headers come from
:mod:`isic_tracking.data.sources.constants`, the module the readers check against.
"""

from isic_tracking.data.sources.constants import TRUTH_FILE, TRUTH_HEADER
from isic_tracking.data.sources.synthetic import read_shortcut, read_truth
from isic_tracking.data.synthetic.artifacts import ARTIFACTS
from isic_tracking.data.synthetic.generate import make_synthetic
from isic_tracking.data.synthetic.layouts import ARTIFACT_FRACTION
from isic_tracking.data.synthetic.painting import render_image
from isic_tracking.data.synthetic.shortcut import Shortcut

__all__ = [
    "ARTIFACTS",
    "ARTIFACT_FRACTION",
    "TRUTH_FILE",
    "TRUTH_HEADER",
    "Shortcut",
    "make_synthetic",
    "read_shortcut",
    "read_truth",
    "render_image",
]
