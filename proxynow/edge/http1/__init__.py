"""The HTTP/1.1 front end: httptools callbacks, request validation and limits, response framing
towards the client, answers the proxy gives itself.
"""
