"""The JSON document of one alert (docs/alert-payload.schema.json): what the `json` webhook
receives as it is, and what the Slack and Discord bodies are rendered from. Ids let a
receiver drop the repeats that at-least-once delivery makes; figures are numbers (units in
the schema), and `display` holds the same sentences the email shows."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from alerts.render.content import Content
from alerts.render.figures import short_symbol
from alerts.render.lines import TOP_POSITIONS, danger_order
from alerts.rules import Level

if TYPE_CHECKING:
    from alerts.messages import MessageInputs

SCHEMA = "marginwatch.alert/1"


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _time(moment: Any) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def payload_of(inputs: MessageInputs, content: Content, text: str) -> dict[str, Any]:
    identity = inputs.identity
    remedy = inputs.remedy if content.level > Level.OK else None
    incident = inputs.incident
    age = None
    if inputs.as_of is not None and inputs.now is not None:
        age = max(0.0, (inputs.now - inputs.as_of).total_seconds())
    return {
        "schema": SCHEMA,
        "notification_id": identity.notification_id if identity else None,
        "incident_id": incident.id if incident else None,
        "message_id": identity.message_id if identity else None,
        "thread_id": (identity.thread_id or identity.message_id) if identity else None,
        "kind": _kind(inputs, content),
        "created_at": _time(inputs.now),
        "as_of": _time(inputs.as_of),
        "data_age_seconds": age,
        # "poll", or "mark_stream": the last poll's positions at a streamed mark price
        "source": "poll" if inputs.positions_as_of is None else "mark_stream",
        "positions_as_of": _time(inputs.positions_as_of if inputs.positions_as_of is not None else inputs.as_of),
        "account": {
            "label": inputs.label,
            "exchange": inputs.exchange,
            "name": inputs.account,
            "collateral": inputs.collateral,
        },
        "level": content.level.name,
        "headline": content.headline,
        "subject": content.subject,
        "changes": [
            {
                "rule": subject,
                "kind": t.kind,
                "from": t.from_level.name,
                "to": t.to_level.name,
                "value": _number(t.value),
                "at": _time(t.at),
            }
            for subject, t in inputs.transitions
        ],
        "figures": {
            "equity": _number(inputs.equity),
            "maintenance_margin": _number(inputs.maintenance_margin),
            "health": _number(inputs.health),
            "chance_24h": _number(inputs.chance_24h),
        },
        "positions": [
            {
                "symbol": p.symbol,
                "short_symbol": short_symbol(p.symbol, inputs.collateral),
                "side": p.side,
                "margin_mode": p.margin_mode,
                "contracts": p.contracts,
                "contract_size": p.contract_size,
                "size": p.contracts * p.contract_size,
                "notional": _number(p.notional),
                "mark_price": _number(p.mark_price),
                "liquidation_price": _number(p.liquidation_price),
                "liquidation_side": p.liquidation_side,
                "distance": _number(p.distance),
                "distance_sigma": _number(p.sigma),
                "chance_24h": _number(p.chance),
                "health": _number(p.health),
                "level": None if p.level is None else Level(p.level).name,
                "past_liquidation": p.past,
                "price_tick": p.price_tick,
            }
            for p in danger_order(list(inputs.positions))[:TOP_POSITIONS]
        ],
        "remedy": None
        if remedy is None or remedy.empty
        else {
            "target_health": remedy.target_health,
            "topups": [
                {
                    "amount": t.amount,
                    "isolated": t.isolated,
                    "symbol": t.symbol,
                    "side": t.side,
                    "health_after": _number(t.health_after),
                    "liquidation_price_after": _number(t.liquidation_after),
                    "liquidation_side_after": t.liquidation_side_after,
                }
                for t in remedy.topups
            ],
            "reductions": [
                {
                    "symbol": c.symbol,
                    "side": c.side,
                    "contracts": c.contracts,
                    "size": c.coins,
                    "notional": c.notional,
                }
                for c in remedy.cuts
            ],
            "health_after_reductions": _number(remedy.health_after_cuts),
            "distance_after_reductions": _number(remedy.distance_after_cuts),
            "chance_after_reductions": _number(remedy.chance_after_cuts),
            "reaches_target": remedy.reaches_target,
            "note": remedy.note or None,
        },
        "incident": None
        if incident is None
        else {
            "id": incident.id,
            "opened_at": _time(incident.opened_at),
            "closed_at": _time(incident.closed_at),
            "worst_level": incident.worst_level.name,
        },
        "problem": None
        if inputs.problem is None
        else {"kind": inputs.problem.kind, "since": _time(inputs.problem.since), "summary": content.lead},
        "display": {
            "lead": content.lead,
            "action_title": content.action_title,
            "actions": content.actions,
            "changes": content.changes,
            "positions": [{"title": title, "lines": rows} for title, rows in content.positions],
            "account": [{"name": name, "value": value} for name, value in content.account],
            "as_of": content.as_of,
            "footer": content.footer,
        },
        "text": text,
    }


def _kind(inputs: MessageInputs, content: Content) -> str:
    if inputs.event in ("liquidated", "test"):
        return inputs.event
    return "resolved" if content.headline == "RESOLVED" else "alert"
