"""Fleet scenario files: defaults, loading and the random draws (format in docs/SIMULATOR.md)."""
from __future__ import annotations

import json
import math
import random
from typing import Any

DEFAULTS: dict[str, Any] = {
    "prefix": "FLEET", "stations": 10, "duration_s": 60, "ramp_s": 10, "seed": 1,
    "meter_interval_s": 10, "heartbeat_s": 60, "config": {},
    "cards": [], "card_pool": 50, "invalid_share": 0.0,
    "start_busy": 0.5, "arrivals_per_hour": 1.0, "stop_by_card": 0.5,
    "session_minutes": {"dist": "lognormal", "median": 30, "sigma": 0.6, "min": 1, "max": 240},
    "offline": {"per_hour": 0.0, "seconds": [5, 60]},
    "power_cut": {"per_hour": 0.0, "seconds": [2, 10]},
    "ev": {"max_a": 32, "battery_kwh": 60, "soc": [10, 80]},
}


def load_scenario(path: str | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the JSON file, then command-line overrides; unknown keys are an error."""
    sc = json.loads(json.dumps(DEFAULTS))
    layers = []
    if path:
        with open(path) as f:
            layers.append(json.load(f))
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    for layer in layers:
        for k, v in layer.items():
            if k.startswith("_"):
                continue  # comments
            if k not in DEFAULTS:
                raise ValueError(f"scenario: unknown key {k!r}")
            sc[k] = dict(sc[k], **v) if isinstance(sc[k], dict) and k != "config" else v
    if not sc["cards"]:
        sc["cards"] = [f"CARD{i:04d}" for i in range(1, int(sc["card_pool"]) + 1)]
    return sc


def sample_s(spec: dict[str, Any], rng: random.Random) -> float:
    """A session length in seconds from {"dist": fixed|uniform|lognormal|exponential, ...} (minutes)."""
    d = spec.get("dist", "fixed")
    if d == "fixed":
        m = float(spec["value"])
    elif d == "uniform":
        m = rng.uniform(spec["min"], spec["max"])
    elif d == "lognormal":
        m = rng.lognormvariate(math.log(spec["median"]), spec.get("sigma", 0.5))
    elif d == "exponential":
        m = rng.expovariate(1 / spec["mean"])
    else:
        raise ValueError("session_minutes: unknown dist " + str(d))
    return 60 * max(spec.get("min", 0), min(spec.get("max", m), m))


def poisson_wait(per_hour: float, rng: random.Random) -> float:
    return rng.expovariate(per_hour / 3600) if per_hour > 0 else math.inf


def driver_steps(sc: dict[str, Any], rng: random.Random, ident: str) -> Any:
    """What the people at one station do, as steps for a runtime to carry out:
    ("sleep", s); ("ready",): wait until the station can start a session (the
    runner re-checks about once a second); ("session",): one begins;
    ("cmd", word, *args): a board command (plug, card TAG, unplug)."""
    wait = 0.0 if rng.random() < sc["start_busy"] else poisson_wait(sc["arrivals_per_hour"], rng)
    while True:
        yield ("sleep", wait)
        yield ("ready",)
        bad = rng.random() < sc["invalid_share"]
        tag = "UNKNOWN" + ident[-4:] if bad else rng.choice(sc["cards"])
        yield ("cmd", "plug")
        yield ("sleep", rng.uniform(0.5, 3))
        yield ("session",)
        yield ("cmd", "card", tag)
        yield ("sleep", sample_s(sc["session_minutes"], rng))
        if rng.random() < sc["stop_by_card"]:
            yield ("cmd", "card", tag)
            yield ("sleep", rng.uniform(1, 5))
        yield ("cmd", "unplug")
        wait = poisson_wait(sc["arrivals_per_hour"], rng)


def chaos_steps(sc: dict[str, Any], rng: random.Random) -> Any:
    """Outages and power cuts at one station: ("sleep", s), then ("offline", s)
    (the network goes away for s seconds) or ("cut", s) (power: dark for s)."""
    off, cut = sc["offline"], sc["power_cut"]
    while True:
        t_off, t_cut = poisson_wait(off["per_hour"], rng), poisson_wait(cut["per_hour"], rng)
        yield ("sleep", min(t_off, t_cut))
        if t_off < t_cut:
            yield ("offline", rng.uniform(*off["seconds"]))
        elif t_cut < math.inf:
            yield ("cut", rng.uniform(*cut["seconds"]))
