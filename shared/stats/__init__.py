"""Pure numerics in River's manner: no I/O, no clock, no logging; doctested.

Reference profiles, drift statistics, concept-drift detectors, rolling metrics and the alert gate.
"""
