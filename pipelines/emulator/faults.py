"""Fault injection and the latency model.

Faults are rules matched against API requests (never the ``/_emulator`` admin routes). A rule
fires on chosen request numbers (``nth``), every k-th request (``every``), or at random with a
probability (``rate``, from a seeded generator so runs repeat), at most ``times`` times.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["429", "500", "502", "503", "non_json", "drop", "stall"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "503", "non_json", "drop", "stall")


@dataclass
class FaultRule:
    """One fault rule.

    Attributes:
        kind: ``429``, ``500``/``502``/``503`` (JSON error bodies), ``non_json`` (a 502 with an
            HTML body, as a proxy sends), ``drop`` (the connection closes mid-response) or
            ``stall`` (the answer is held for ``seconds`` before it is sent normally).
        path: the rule applies to API paths starting with this (after the version prefix).
        rate: probability of firing on each matching request.
        nth: the matching requests (1-based, counted from when the rule was set) it fires on.
        every: fire on every k-th matching request.
        times: fire at most this many times (None = unbounded).
        retry_after: the ``Retry-After`` header of a 429 (sent verbatim, so it can be ``0`` or
            malformed); None sends no header.
        seconds: how long a ``stall`` holds the answer.
    """

    kind: FaultKind
    path: str = "/"
    rate: float = 0.0
    nth: list[int] = field(default_factory=list)
    every: int = 0
    times: int | None = None
    retry_after: str | None = None
    seconds: float = 30.0
    seen: int = 0
    fired: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Validate and build a rule from its JSON form.

        Raises:
            ValueError: unknown keys or values out of range, with what is wrong.
        """
        allowed = {"kind", "path", "rate", "nth", "every", "times", "retry_after", "seconds"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        kind = str(data.get("kind"))
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {list(FAULT_KINDS)}, got {kind!r}")
        rate = float(data.get("rate", 0.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        nth_values = data.get("nth", [])
        if not isinstance(nth_values, list):
            raise ValueError("nth must be a list of request numbers, e.g. [1, 3]")
        nth = [int(n) for n in nth_values]
        every = int(data.get("every", 0))
        # A rule that can never fire is a mistake in the test that set it: say so.
        if any(n < 1 for n in nth):
            raise ValueError("nth counts requests from 1")
        if every < 0:
            raise ValueError("every must be >= 0")
        if not (rate or nth or every):
            raise ValueError("a fault needs 'rate', 'nth' or 'every' to say when it fires")
        retry_after = data.get("retry_after")
        times = data.get("times")
        if times is not None and int(times) < 0:
            raise ValueError("times must be >= 0")
        seconds = float(data.get("seconds", 30.0))
        if not 0.0 <= seconds < float("inf"):
            raise ValueError("seconds must be a finite number >= 0")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            path=str(data.get("path", "/")),
            rate=rate,
            nth=nth,
            every=every,
            times=None if times is None else int(times),
            retry_after=None if retry_after is None else str(retry_after),
            seconds=seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        """The rule's JSON form, with its counters."""
        return {
            "kind": self.kind,
            "path": self.path,
            "rate": self.rate,
            "nth": self.nth,
            "every": self.every,
            "times": self.times,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "seen": self.seen,
            "fired": self.fired,
        }


@dataclass
class Latency:
    """Simulated server time: a fixed cost per request plus a cost per row returned."""

    per_request_ms: float = 0.0
    per_row_ms: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Latency:
        """Validate and build from the admin API's JSON form.

        Raises:
            ValueError: unknown keys, or values that are not finite numbers >= 0 (checked here
                because the delay is only computed while a request is answered).
        """
        if not isinstance(data, dict):
            raise ValueError("latency must be an object")
        allowed = {"per_request_ms", "per_row_ms"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown latency keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        values: dict[str, float] = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"latency {key} must be a number, got {value!r}")
            if not 0.0 <= value < float("inf"):
                raise ValueError(f"latency {key} must be a finite number >= 0")
            values[key] = float(value)
        return cls(**values)

    def seconds(self, rows: int) -> float:
        """Delay for an answer with ``rows`` records."""
        return (self.per_request_ms + self.per_row_ms * rows) / 1000.0


class FaultInjector:
    """Holds the rules and decides, request by request, which one fires."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self.rules: list[FaultRule] = list(rules or [])
        self.seed = seed
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def set_rules(self, rules: list[FaultRule], seed: int | None = None) -> None:
        """Replace every rule. Counters and the random sequence start again (from ``seed``, else
        the start-up seed), so the same rules fire on the same requests whatever ran before."""
        with self._lock:
            self.rules = list(rules)
            if seed is not None:
                self.seed = seed
            self._random = random.Random(self.seed)

    def pick(self, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (every matching rule counts it)."""
        chosen: FaultRule | None = None
        with self._lock:
            for rule in self.rules:
                if not path.startswith(rule.path):
                    continue
                rule.seen += 1
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                fires = (
                    rule.seen in rule.nth
                    or (rule.every > 0 and rule.seen % rule.every == 0)
                    or (rule.rate > 0 and self._random.random() < rule.rate)
                )
                if fires and chosen is None:
                    rule.fired += 1
                    chosen = rule
        return chosen
