"""Engine API handlers, one module per resource (system, images; later containers, ...)."""
