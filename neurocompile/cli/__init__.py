"""Command-line interface (click): thin wrappers that parse, call the library and print."""
