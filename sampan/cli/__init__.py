"""sampan.cli (see DESIGN.md for its layer)."""
