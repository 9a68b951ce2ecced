"""The two programs of the seed note, from examples/, with their sleeps scaled down."""

from __future__ import annotations

import threading
import types

import offload

from .support.loops import Runner
from .support.scripts import load_example

UNIT = 0.05  # seconds per unit of the original's sleep(1)


def test_two_coroutines_run_on_exactly_two_threads(run: Runner[None], default_pool: offload.Pool) -> None:
    said: list[str] = []
    run(load_example("seed_two_coroutines").main(unit=UNIT, rounds=3, say=said.append))
    assert sorted(said) == ["dopey"] * 3 + ["sleepy"] * 3
    s = default_pool.stats()
    assert (s.spawned, s.peak_threads, s.completed) == (2, 2, 7)


def test_spawning_never_has_more_than_two_threads(run: Runner[None], default_pool: offload.Pool) -> None:
    said: list[str] = []
    spoken = threading.Condition()

    def say(word: str) -> None:
        with spoken:
            said.append(word)
            spoken.notify_all()

    def sleep(units: float) -> None:
        # The program's two lengths of sleep only order its steps: each round's sleepy
        # wakes (and says so) before dopey does. Here that order is kept whatever the
        # machine's speed: dopey's long sleep lasts until the round's sleepy has spoken.
        if units == 2 * UNIT:
            with spoken:
                assert spoken.wait_for(lambda: said.count("sleepy") == said.count("dopey"), timeout=10)

    example = load_example("seed_spawning")
    example.time = types.SimpleNamespace(sleep=sleep)
    run(example.main(unit=UNIT, rounds=4, say=say))
    assert sorted(said) == ["dopey"] * 4 + ["sleepy"] * 4
    s = default_pool.stats()
    # The original starts a thread each round; here dopey's thread returns to dopey.
    assert (s.spawned, s.peak_threads, s.completed) == (2, 2, 8)
