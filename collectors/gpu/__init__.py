"""collectors/gpu."""
