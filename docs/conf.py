"""Sphinx configuration of spectrial's API reference (built with ``sphinx-build -W -b html docs docs/_build``)."""

from spectrial import __version__

project = "spectrial"
author = "The spectrial developers"
copyright = "2026, The spectrial developers"
release = version = __version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
napoleon_google_docstring = False  # numpydoc sections (Parameters, Returns, Raises) only
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"description": "Virtual clinical trials of myocardial perfusion SPECT", "page_width": "1100px"}
