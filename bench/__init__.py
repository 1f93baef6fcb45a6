"""Benchmarks of the pipeline's stages against real servers; `python -m bench --help`."""
