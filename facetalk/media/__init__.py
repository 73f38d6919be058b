"""media stage (see DESIGN.md)."""
