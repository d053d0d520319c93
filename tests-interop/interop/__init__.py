"""The interop runner's parts; run.py is the entry point."""
