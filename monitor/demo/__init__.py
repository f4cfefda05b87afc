"""monitor/demo."""
