"""TCP routing by SNI and client IP, the TCP proxy and the PROXY protocol."""
