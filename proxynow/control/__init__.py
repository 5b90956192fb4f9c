"""The control plane: wiring of a running proxynow, the worker supervisor, provider aggregation,
checks of merged configuration, active health checks and `proxynow check`.
"""
