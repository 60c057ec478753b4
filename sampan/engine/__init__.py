"""sampan.engine (see DESIGN.md for its layer)."""
