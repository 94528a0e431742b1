"""Sphinx configuration: API reference from the docstrings (autodoc).

Built by ``bash scripts/docs`` (HTML into docs/_build/html) and in CI with
warnings as errors; ``sphinx-build -b doctest`` runs the examples written as
``testcode`` blocks (the other pages include scripts from examples/, which
tests/test_examples.py runs).
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)  # the checkout, with its in-place compiled module

project = "mongoose_py"
author = "mongoose_py contributors"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "sphinx.ext.viewcode"]
exclude_patterns = ["_build", "README.md", "requirements.txt"]
html_theme = "alabaster"
html_static_path = []
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"undoc-members": False}
# The docstrings' own examples are doctest blocks marked +SKIP (they need a
# running server); the doctest builder runs the pages' testcode blocks only.
doctest_test_doctest_blocks = ""
