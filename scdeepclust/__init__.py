"""scdeepclust: spatially aware deep clustering of spatial transcriptomics, for Scanpy.

The submodules (``datasets``, ``engine``, ``metrics``, ``pl``, ``pp``, ``tl``) and the
readers are imported on first use, so that ``import scdeepclust`` itself is instant: the
command line starts (and answers Ctrl-C) before the heavy scientific libraries are loaded.
"""

import importlib as _importlib

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

_SUBMODULES = frozenset({"datasets", "engine", "metrics", "pl", "pp", "tl"})
_FROM_IO = frozenset({"SpcaFormatError", "read_spca", "read_spca_dir"})


def __getattr__(name: str):
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    if name in _FROM_IO:
        return getattr(_importlib.import_module(".io", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
