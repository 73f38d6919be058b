"""audio stage (see DESIGN.md)."""
