"""EasyOCR's detector helpers, imported without EasyOCR's package initialisation.

The text score uses only CRAFT and EasyOCR's pre- and post-processing around it (imgproc,
craft_utils, utils, craft).  ``import easyocr`` runs ``easyocr/__init__.py``, which builds the
whole Reader (recognizers, torchvision): about 170 MB more in every process that scores text.
``easyocr_module`` loads just the submodule asked for.
"""

from __future__ import annotations

import functools


@functools.cache
def easyocr_module(name: str):
    """EasyOCR's submodule ``name`` (imgproc, craft_utils, utils, craft), imported through a stand-in
    ``easyocr`` package that has the real one's path but runs none of its ``__init__.py``.  The
    stand-in is taken out of ``sys.modules`` again, so a later ``import easyocr`` gets the real one."""
    import importlib
    import importlib.util
    import sys
    import types

    if "easyocr" in sys.modules:
        return importlib.import_module(f"easyocr.{name}")
    spec = importlib.util.find_spec("easyocr")
    package = types.ModuleType("easyocr")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["easyocr"] = package
    try:
        return importlib.import_module(f"easyocr.{name}")
    finally:
        for loaded in [m for m in sys.modules if m == "easyocr" or m.startswith("easyocr.")]:
            del sys.modules[loaded]
