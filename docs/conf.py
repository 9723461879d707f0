"""Sphinx configuration: API reference, tutorial (not executed) and benchmark tables."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

project = "scdeepclust"
author = "scdeepclust developers"
copyright = "2026, scdeepclust developers"  # noqa: A001
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"

autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
# Type names in docstrings are prose ("array-like", "dict"), not all resolvable references.
nitpicky = False

intersphinx_mapping = {}  # offline builds: no inventories fetched

nb_execution_mode = "off"  # the tutorial is executed by tests/test_notebook.py, not here
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

html_theme = "alabaster"
html_title = "scdeepclust"

# The tutorial lives in notebooks/ (where the test suite runs it); render a copy.
_generated = DOCS / "generated"
_generated.mkdir(exist_ok=True)
shutil.copyfile(ROOT / "notebooks" / "tutorial.ipynb", _generated / "tutorial.ipynb")
