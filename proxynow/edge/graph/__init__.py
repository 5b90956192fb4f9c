"""Snapshot to immutable `RouterGraph` (rule tables, targets, services), the resources kept
across swaps, and the worker state that holds the graph it serves now (`state`).
"""
