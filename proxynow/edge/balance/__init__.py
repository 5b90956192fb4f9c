"""Load balancing, generic over children: weighted round robin, p2c and leasttime, sticky cookies,
rendezvous hashing.
"""
