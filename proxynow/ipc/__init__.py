"""What crosses the boundary between the control plane and the workers: the framed channel,
listening sockets reserved and bound, process priority and the sets pushed to workers (ACME
challenges).
"""
