"""collectors/prometheus."""
