"""face stage (see DESIGN.md)."""
