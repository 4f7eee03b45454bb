"""Slow, obviously-correct pure-Python twins of native detectors."""
