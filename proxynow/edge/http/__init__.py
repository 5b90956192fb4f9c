"""The HTTP request model: exchanges, the header API, peers, and the middlewares a router runs."""
