"""Privacy events: the dp-accounting `DpEvent`s the Node records, and their JSON form.

The ledger stores events as JSON in a database column. Decoding uses a fixed map from our own type names to
dp-accounting classes (never `DpEvent.from_named_tuple`, which imports a module named in the data), validates
every field, and refuses anything else, so a stored row can never make the Node import or run code.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from grid_runtime.core.lazy import LazyModule

if TYPE_CHECKING:
    import dp_accounting
    from dp_accounting import DpEvent
else:
    dp_accounting = LazyModule("dp_accounting")  # it imports scipy: off the Node's start path

MAX_EVENT_DEPTH = 8
MAX_COMPOSED_EVENTS = 10_000


def dp_sgd_event(*, sample_rate: float, noise_multiplier: float, steps: int) -> DpEvent:
    """The event of a DP-SGD run: `steps` Poisson-sampled Gaussian steps, self-composed."""
    _require_probability("sample_rate", sample_rate)
    _require_positive("noise_multiplier", noise_multiplier)
    _require_count("steps", steps)
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)),
        steps,
    )


def laplace_event(*, noise_multiplier: float) -> DpEvent:
    """A Laplace release whose noise scale is `noise_multiplier` times the L1 sensitivity (ε = 1/multiplier)."""
    _require_positive("noise_multiplier", noise_multiplier)
    return dp_accounting.LaplaceDpEvent(noise_multiplier)


def gaussian_event(*, noise_multiplier: float) -> DpEvent:
    """A Gaussian release whose noise std is `noise_multiplier` times the L2 sensitivity."""
    _require_positive("noise_multiplier", noise_multiplier)
    return dp_accounting.GaussianDpEvent(noise_multiplier)


def zcdp_event(*, rho: float) -> DpEvent:
    """A ρ-zCDP release (OpenDP's zero-concentrated measurements, e.g. the quantile mechanism)."""
    _require_positive("rho", rho)
    return dp_accounting.ZCDpEvent(rho)


def composed_event(events: list[DpEvent]) -> DpEvent:
    """Several releases made together (for example a mean as a noisy sum and a noisy count)."""
    if not events:
        raise ValueError("a composed event needs at least one event")
    return dp_accounting.ComposedDpEvent(list(events))


def non_private_event() -> DpEvent:
    """A release without differential privacy (a raw private tensor, a job run without DP): infinite cost."""
    return dp_accounting.NonPrivateDpEvent()


# ---- JSON ------------------------------------------------------------------------------------------------


def event_to_dict(event: DpEvent) -> dict[str, Any]:
    """The JSON-ready form of an event (only the event types the Node records)."""
    if isinstance(event, dp_accounting.GaussianDpEvent):
        return {"type": "gaussian", "noise_multiplier": float(event.noise_multiplier)}
    if isinstance(event, dp_accounting.LaplaceDpEvent):
        return {"type": "laplace", "noise_multiplier": float(event.noise_multiplier)}
    if isinstance(event, dp_accounting.ZCDpEvent):
        return {"type": "zcdp", "rho": float(event.rho), "xi": float(event.xi)}
    if isinstance(event, dp_accounting.PoissonSampledDpEvent):
        return {
            "type": "poisson_sampled",
            "sampling_probability": float(event.sampling_probability),
            "event": event_to_dict(event.event),
        }
    if isinstance(event, dp_accounting.SelfComposedDpEvent):
        return {"type": "self_composed", "count": int(event.count), "event": event_to_dict(event.event)}
    if isinstance(event, dp_accounting.ComposedDpEvent):
        return {"type": "composed", "events": [event_to_dict(e) for e in event.events]}
    if isinstance(event, dp_accounting.NonPrivateDpEvent):
        return {"type": "non_private"}
    if isinstance(event, dp_accounting.NoOpDpEvent):
        return {"type": "no_op"}
    raise ValueError(f"cannot record a {type(event).__name__}: not an event type the Node supports")


def event_from_dict(data: Any, *, _depth: int = 0) -> DpEvent:
    """Rebuild an event from `event_to_dict`'s form; raises ValueError on anything malformed."""
    if _depth > MAX_EVENT_DEPTH:
        raise ValueError(f"privacy event nested deeper than {MAX_EVENT_DEPTH} levels")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ValueError("a privacy event must be an object with a 'type'")
    kind = data["type"]
    fields = {k: v for k, v in data.items() if k != "type"}

    def expect(*names: str) -> None:
        if set(fields) != set(names):
            raise ValueError(f"privacy event '{kind}' takes fields {sorted(names)}, got {sorted(fields)}")

    if kind == "gaussian":
        expect("noise_multiplier")
        return gaussian_event(noise_multiplier=_number(fields["noise_multiplier"]))
    if kind == "laplace":
        expect("noise_multiplier")
        return laplace_event(noise_multiplier=_number(fields["noise_multiplier"]))
    if kind == "zcdp":
        expect("rho", "xi")
        rho, xi = _number(fields["rho"]), _number(fields["xi"])
        if rho < 0 or xi < 0:
            raise ValueError("zcdp rho and xi must be >= 0")
        return dp_accounting.ZCDpEvent(rho, xi)
    if kind == "poisson_sampled":
        expect("sampling_probability", "event")
        q = _number(fields["sampling_probability"])
        _require_probability("sampling_probability", q)
        return dp_accounting.PoissonSampledDpEvent(q, event_from_dict(fields["event"], _depth=_depth + 1))
    if kind == "self_composed":
        expect("count", "event")
        count = fields["count"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise ValueError("self_composed count must be an integer")
        _require_count("count", count)
        return dp_accounting.SelfComposedDpEvent(event_from_dict(fields["event"], _depth=_depth + 1), count)
    if kind == "composed":
        expect("events")
        events = fields["events"]
        if not isinstance(events, list) or not events or len(events) > MAX_COMPOSED_EVENTS:
            raise ValueError(f"composed events must be a list of 1 to {MAX_COMPOSED_EVENTS} events")
        return dp_accounting.ComposedDpEvent([event_from_dict(e, _depth=_depth + 1) for e in events])
    if kind == "non_private":
        expect()
        return dp_accounting.NonPrivateDpEvent()
    if kind == "no_op":
        expect()
        return dp_accounting.NoOpDpEvent()
    raise ValueError(f"unknown privacy event type '{kind}'")


def event_to_json(event: DpEvent) -> str:
    """The event as a JSON string, for a database column."""
    return json.dumps(event_to_dict(event), sort_keys=True, allow_nan=False)


def event_from_json(text: str) -> DpEvent:
    """Parse `event_to_json`'s output; raises ValueError on anything malformed."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"privacy event is not valid JSON: {exc.msg}") from exc
    return event_from_dict(data)


def describe_event(event: DpEvent) -> str:
    """One line for the cost card: the mechanism and its settings."""
    if isinstance(event, dp_accounting.SelfComposedDpEvent):
        inner = event.event
        if isinstance(inner, dp_accounting.PoissonSampledDpEvent) and isinstance(
            inner.event, dp_accounting.GaussianDpEvent
        ):
            return (
                f"DP-SGD: {event.count} steps, Poisson sampling rate {inner.sampling_probability:.6g}, "
                f"noise multiplier {inner.event.noise_multiplier:.6g}"
            )
        return f"{event.count} x ({describe_event(inner)})"
    if isinstance(event, dp_accounting.PoissonSampledDpEvent):
        return f"Poisson sampling rate {event.sampling_probability:.6g} of ({describe_event(event.event)})"
    if isinstance(event, dp_accounting.GaussianDpEvent):
        return f"Gaussian mechanism, noise multiplier {event.noise_multiplier:.6g}"
    if isinstance(event, dp_accounting.LaplaceDpEvent):
        return f"Laplace mechanism, noise multiplier {event.noise_multiplier:.6g}"
    if isinstance(event, dp_accounting.ZCDpEvent):
        return f"zero-concentrated DP, rho {event.rho:.6g}"
    if isinstance(event, dp_accounting.ComposedDpEvent):
        return " + ".join(describe_event(e) for e in event.events)
    if isinstance(event, dp_accounting.NonPrivateDpEvent):
        return "not differentially private"
    return type(event).__name__


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _require_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _require_probability(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


def _require_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
