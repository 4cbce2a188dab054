"""Pure pickup rules: no I/O, no imports from the rest of the package."""
