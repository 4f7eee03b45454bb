"""Aggregates, trends and plots of classified flows."""

from nkclass.report.aggregate import LabelledBatch, ReportBuilder, aggregate
from nkclass.report.model import ANONYMISING, BUCKETS, METRICS, Report, Trend

__all__ = [
    "ANONYMISING", "BUCKETS", "METRICS", "LabelledBatch", "Report", "ReportBuilder", "Trend",
    "aggregate",
]
