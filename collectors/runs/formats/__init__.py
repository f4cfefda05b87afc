"""Run formats: one module per format, each exporting its spec (`FORMAT`, see collectors/runs/format_spec.py).

What the readers share (`Parsed`, `LineReader`, `SnapshotError`, key names) lives in
collectors/runs/parsed.py; the format modules are found by `load_formats()`.
"""
