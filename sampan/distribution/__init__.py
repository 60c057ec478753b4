"""sampan.distribution (see DESIGN.md for its layer)."""
