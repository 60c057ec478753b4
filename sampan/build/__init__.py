"""sampan.build (see DESIGN.md for its layer)."""
