"""Stdlib-only building blocks of the data plane: proxy errors and their answers, flow gates,
metrics counters.
"""
