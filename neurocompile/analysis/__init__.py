"""Drivers over targets that are not targets: calibration runs, pass driver, compare, cross-check."""

from neurocompile.analysis.calibrate import record_activity, run_pass
from neurocompile.analysis.compare import compare
from neurocompile.analysis.crosscheck import crosscheck

__all__ = ["compare", "crosscheck", "record_activity", "run_pass"]
