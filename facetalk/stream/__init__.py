"""stream stage (see DESIGN.md)."""
