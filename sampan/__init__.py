"""sampan: a container engine in Python that speaks Docker's Engine API.

See DESIGN.md (in the steering repository) for the map: processes, data root and layers.
"""

__version__ = "0.1.0"

#: The Engine API versions sampan serves (DESIGN.md, "Compatibility contracts").
API_VERSION = "1.51"
MIN_API_VERSION = "1.24"
