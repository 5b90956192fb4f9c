"""The HTTP/2 front end: streams as exchanges over the shared dispatch (edge/proxy/)."""
