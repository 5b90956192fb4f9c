"""Configuration samples shared by the `check` tests (tests/unit/control/test_config_check.py
and tests/e2e/cli/test_cli.py)."""

# One file, four objects, four kinds of problem: an unknown key (router a), a bad rule
# (b), a missing service (c), a load balancer without servers (d's service: a warning).
FOUR_OBJECTS = """
    http:
      routers:
        a:
          rule: "Host(`a`)"
          service: app
          priorty: 1
        b:
          rule: "Host(`b`) &&"
          service: app
        c:
          rule: "Host(`c`)"
          service: nowhere
        d:
          rule: "Host(`d`)"
          service: empty
      services:
        app:
          loadBalancer:
            servers:
              - url: "http://127.0.0.1:9000"
        empty:
          loadBalancer:
            servers: []
    """
