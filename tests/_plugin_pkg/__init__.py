"""A tiny proxy package outside zenbench, for the plug-in tests (entry point and ``module:Class`` spec)."""
