"""scdeepclust: spatially aware deep clustering of spatial transcriptomics, for Scanpy."""

import warnings as _warnings

# louvain (imported through scanpy) warns that pkg_resources is deprecated on every import;
# the project pins setuptools<81 so that it keeps working. Silence only that message.
_warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from . import datasets, engine, metrics, pl, pp, tl  # noqa: E402
from .io import SpcaFormatError, read_spca, read_spca_dir  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "datasets",
    "engine",
    "metrics",
    "pl",
    "pp",
    "tl",
    "read_spca",
    "read_spca_dir",
    "SpcaFormatError",
]
