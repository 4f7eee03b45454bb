"""Slow, obviously-correct pure-Python twins of native code: the engine
(prefix match, classifier stages) and the detectors."""
