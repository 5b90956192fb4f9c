"""A worker process: its lifecycle (channel, listeners, drain) and the accepting side of a
connection (ClientHello peek, then TLS termination, passthrough or plain HTTP).
"""
