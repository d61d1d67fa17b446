"""mmanat test suite."""
