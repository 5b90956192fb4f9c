"""The choice of mirrors per request (Traefik's counting) and the bound on a kept body."""

from __future__ import annotations

from proxynow.edge.http.mirror_copy import MAX_BODY, MirrorCopy
from proxynow.edge.upstream.server import Mirror, Mirroring, Server


def no_server() -> Server | None:
    return None


def shares(percents: list[int], requests: int) -> list[int]:
    mirrors = [Mirror(f"m{i}", no_server, p) for i, p in enumerate(percents)]
    mirroring = Mirroring(mirrors, -1, True)
    for _ in range(requests):
        mirroring.chosen()
    return [mirror.count for mirror in mirrors]


def test_each_mirror_gets_its_percent_of_the_requests() -> None:
    assert shares([100, 50, 10, 0, 33], 300) == [300, 150, 30, 0, 99]


def test_a_share_starts_with_the_first_request() -> None:
    mirrors = [Mirror("half", no_server, 50)]
    mirroring = Mirroring(mirrors, -1, True)
    assert [bool(mirroring.chosen()) for _ in range(4)] == [True, False, True, False]


def test_a_body_over_max_body_size_is_not_kept() -> None:
    mirroring = Mirroring([Mirror("m", no_server, 100)], 10, True)
    kept = MirrorCopy(mirroring, mirroring.chosen(), [b"12345"])
    kept.add(b"67890")
    assert kept.body == [b"12345", b"67890"]
    kept.add(b"!")
    assert kept.body is None
    kept.add(b"more")  # nothing is kept once it is over
    assert kept.body is None


def test_no_limit_still_stops_at_max_body() -> None:
    mirroring = Mirroring([Mirror("m", no_server, 100)], -1, True)
    kept = MirrorCopy(mirroring, mirroring.chosen(), None)
    kept.add(b"x" * MAX_BODY)
    assert kept.body is not None
    kept.add(b"x")
    assert kept.body is None


def test_mirror_body_false_keeps_no_bytes_and_no_body_is_too_large() -> None:
    mirroring = Mirroring([Mirror("m", no_server, 100)], 4, False)
    kept = MirrorCopy(mirroring, mirroring.chosen(), [b"abc"])
    kept.add(b"de")
    assert kept.body == []  # the head alone goes to the mirror
