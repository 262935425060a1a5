"""Readers of the official ISIC data layouts, each returning a manifest plus a skip report.

One module per layout (DESIGN.md, "Official layouts to read"): :mod:`.isic2020`,
:mod:`.isic2019`, :mod:`.isic2019_folders`, :mod:`.isic2016`, :mod:`.ham10000`,
:mod:`.isic_archive`, :mod:`.isic2024`, :mod:`.synthetic`; the file names and headers they
expect in :mod:`.constants`; what they share in :mod:`.checks` (CSV, id and value checks),
:mod:`.files` (one directory scan per folder) and :mod:`.result` (the result, skip reports,
merging); the names in :mod:`.registry`.

Each reader checks the CSV header, the label values and the id uniqueness (a bad one is an
:class:`IsicInputError` naming file, line, column and value), matches the listed ids against
one directory scan per image folder, and reports every image it does not use in
``SourceResult.report`` (``image_id, path, reason``; reasons in ``REASONS``). Image paths are
absolute and point into the user's folder, which is only read, never written (ISIC 2024: into
its HDF5 file, ``train-image.hdf5::<isic_id>``).
"""

from isic_tracking.data.sources.checks import read_csv_checked
from isic_tracking.data.sources.files import scan_images
from isic_tracking.data.sources.ham10000 import read_ham10000
from isic_tracking.data.sources.isic2016 import read_isic2016_test
from isic_tracking.data.sources.isic2019 import read_isic2019
from isic_tracking.data.sources.isic2019_folders import read_isic2019_folders
from isic_tracking.data.sources.isic2020 import read_isic2020
from isic_tracking.data.sources.isic2024 import read_isic2024
from isic_tracking.data.sources.isic_archive import read_isic_archive
from isic_tracking.data.sources.registry import (
    READERS,
    Reader,
    detect_dataset,
    get_reader,
    read_source,
)
from isic_tracking.data.sources.result import (
    SourceResult,
    concat_results,
    empty_report,
    merge_external_malignant,
)
from isic_tracking.data.sources.synthetic import read_shortcut, read_synthetic, read_truth

__all__ = [
    "READERS",
    "Reader",
    "SourceResult",
    "concat_results",
    "detect_dataset",
    "empty_report",
    "get_reader",
    "merge_external_malignant",
    "read_csv_checked",
    "read_ham10000",
    "read_isic2016_test",
    "read_isic2019",
    "read_isic2019_folders",
    "read_isic2020",
    "read_isic2024",
    "read_isic_archive",
    "read_shortcut",
    "read_source",
    "read_synthetic",
    "read_truth",
    "scan_images",
]
