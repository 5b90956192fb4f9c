"""A worker process: its lifecycle, the state it serves from (graph, health, metrics) and the
accepting side of a connection (ClientHello peek, TLS, passthrough, HTTP).
"""
