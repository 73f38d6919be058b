"""Adapters that put the avatar into the frameworks people build agents with; each needs its extra."""
