"""Data plane: entrypoints, workers, HTTP/1.1, TLS, upstream pools, balancers, middlewares."""
