"""Command-line interface (click): thin wrappers that parse, call the library and print."""

import time

STARTED = time.perf_counter()  # when the CLI was imported: the start of "whole command" times
