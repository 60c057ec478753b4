"""sampan.distribution: one copy routine between image locations (see ``copy.py``).

The entry points the engine calls: ``load_archive`` (``docker load``) and ``save_archive``
(``docker save``).
"""

from sampan.distribution.dockerarchive import load_archive, save_archive

__all__ = ["load_archive", "save_archive"]
