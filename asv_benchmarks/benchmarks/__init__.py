"""asv benchmarks of kmaot (run from asv_benchmarks/: ``asv run --quick``)."""
