"""sampan.image (see DESIGN.md for its layer)."""
