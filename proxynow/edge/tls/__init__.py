"""TLS towards clients: ClientHello parsing, SNI tables, certificate and option contexts."""
