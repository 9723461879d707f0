"""scdeepclust: spatially aware deep clustering of spatial transcriptomics, for Scanpy."""

from . import datasets, engine, metrics, pl, pp, tl
from .io import SpcaFormatError, read_spca, read_spca_dir

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
