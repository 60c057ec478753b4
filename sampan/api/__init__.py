"""sampan.api (see DESIGN.md for its layer)."""
