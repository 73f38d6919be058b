"""facetalk: one portrait photo + one voice clip -> a talking-face video, on a CPU."""

__version__ = "0.1.0"
