"""The request model: the exchange a request lives in, client peers and forwarded headers, and the
HTTP middlewares.
"""
