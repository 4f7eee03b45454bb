"""Shared test setup: tests/ is on sys.path, so ``reference`` (the pure-Python
twins of native code) imports as a package."""
