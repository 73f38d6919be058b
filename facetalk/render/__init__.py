"""render stage (see DESIGN.md)."""
