"""Reports: tables, plots and an index page for runs/<name> (`ablate report`), and `ablate attend`."""

from ablate.report.page import build_report

__all__ = ["build_report"]
