"""Version-neutral forwarding: route, pick, dial/attach, upstream request head, finish, retry
before send, upgrade hand-off; front ends talk to it through `Downstream`.
"""
