"""sampan.client (see DESIGN.md for its layer)."""
