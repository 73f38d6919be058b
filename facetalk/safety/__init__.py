"""safety stage (see DESIGN.md)."""
