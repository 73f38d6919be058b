"""motion stage (see DESIGN.md)."""
