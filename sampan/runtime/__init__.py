"""sampan.runtime (see DESIGN.md for its layer)."""
