"""collectors/join."""
