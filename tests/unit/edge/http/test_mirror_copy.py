"""The copies of request bodies kept for mirrors: bounded per request (`maxBodySize`) and
per worker (`BodyBudget`), what is held given back when sent, dropped or abandoned."""

from __future__ import annotations

import gc

from proxynow.edge.http.mirror_copy import BodyBudget, MirrorCopy
from proxynow.edge.upstream.server import Mirror, Mirroring, no_server


def mirroring(max_body: int = -1) -> Mirroring:
    return Mirroring([Mirror("m", no_server, 100)], max_body, True)


def copy(budget: BodyBudget, service: Mirroring) -> MirrorCopy:
    return MirrorCopy(service, service.mirrors, None, budget)


def test_copies_past_the_worker_budget_are_dropped_and_the_others_kept() -> None:
    budget = BodyBudget(250)
    service = mirroring()
    copies = [copy(budget, service) for _ in range(3)]
    for kept in copies:
        kept.add(b"x" * 100)
    assert [kept.body is not None for kept in copies] == [True, True, False]
    assert budget.held == 200


def test_a_dropped_copy_gives_back_what_it_held() -> None:
    budget = BodyBudget(250)
    first, second = copy(budget, mirroring()), copy(budget, mirroring())
    first.add(b"x" * 100)
    second.add(b"x" * 100)
    first.add(b"x" * 100)  # 300 would pass the budget: this copy is dropped
    assert first.body is None and budget.held == 100
    first.add(b"x")  # nothing more is held for it
    assert budget.held == 100


def test_over_max_body_size_releases_too() -> None:
    budget = BodyBudget(1000)
    kept = copy(budget, mirroring(max_body=150))
    kept.add(b"x" * 100)
    kept.add(b"x" * 100)
    assert kept.body is None and budget.held == 0


def test_released_when_sent_and_when_abandoned() -> None:
    budget = BodyBudget(1000)
    sent = copy(budget, mirroring())
    sent.add(b"x" * 100)
    sent.release()
    sent.release()  # idempotent
    assert budget.held == 0
    abandoned = copy(budget, mirroring())
    abandoned.add(b"x" * 100)
    assert budget.held == 100
    del abandoned
    gc.collect()
    assert budget.held == 0
