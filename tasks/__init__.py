"""Bundled task definitions (YAML) and the data we author ourselves (JSONL)."""
