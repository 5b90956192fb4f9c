"""Snapshot to immutable `RouterGraph`: rule tables, targets, services, resources kept across
swaps.
"""
