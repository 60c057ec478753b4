"""sampan.network (see DESIGN.md for its layer)."""
