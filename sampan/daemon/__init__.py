"""sampan.daemon (see DESIGN.md for its layer)."""
