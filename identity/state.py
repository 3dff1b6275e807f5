"""What the identity handler's table keeps per aggregate, as JSON-able values and back.

The worker's table (changelogged, so a restarted worker restores it) stores plain JSON: every
datetime as ISO-8601 text with its offset, every role as its name. `load(dump(x)) == x` for
every stored value (tested), so a restore decides exactly as before the restart.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from identity import sso
from identity.account import Account
from identity.email import EmailIndex
from identity.flags import Flag
from identity.handler import Outputs, Record, State, Stored
from identity.organization import ApiKey, Invitation, Organization, Role
from identity.session import Session
from identity.user import User

FORMAT = 1
_SESSION_TIMES = ("created_at_utc", "last_used_at_utc", "expires_at_utc", "revoked_at_utc")
_ACCOUNT_TIMES = ("period_start_utc", "period_end_utc", "grace_until_utc")
_FLAG_SETS = ("roles", "org_ids_on", "org_ids_off")


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def dump(stored: Stored) -> dict[str, Any]:
    """`stored` as a JSON-able dict."""
    state = stored.state
    if isinstance(state, Organization):
        body: dict[str, Any] = {
            "aggregate_type": "organization",
            "org_id": state.org_id,
            "name": state.name,
            "version": state.version,
            "members": {u: r.value for u, r in state.members.items()},
            "invitations": [
                {**_plain(i), "role": i.role.value, "expires_at_utc": _time(i.expires_at_utc)}
                for i in state.invitations.values()
            ],
            "api_keys": [
                {**_plain(k), "role": k.role.value, "expires_at_utc": _time(k.expires_at_utc)}
                for k in state.api_keys.values()
            ],
            "connections": [sso.event_fields(c) for c in state.connections.values()],
        }
    elif isinstance(state, User):
        body = {
            "aggregate_type": "user",
            **_plain(state),
            "locked_until_utc": _time(state.locked_until_utc),
        }
    elif isinstance(state, Session):
        body = {
            "aggregate_type": "session",
            **_plain(state),
            **{name: _time(getattr(state, name)) for name in _SESSION_TIMES},
            "previous_hashes": list(state.previous_hashes),
        }
    elif isinstance(state, Account):
        body = {
            "aggregate_type": "account",
            **_plain(state),
            **{name: _time(getattr(state, name)) for name in _ACCOUNT_TIMES},
            "paid_invoices": list(state.paid_invoices),
            "seen": list(state.seen),
        }
    elif isinstance(state, Flag):
        body = {
            "aggregate_type": "flag",
            **_plain(state),
            **{name: sorted(getattr(state, name)) for name in _FLAG_SETS},
        }
    else:
        body = {"aggregate_type": "email", **_plain(state)}
    recent = [
        [
            command_id,
            {
                "events": [_plain_record(e) for e in outputs.events],
                "outcome": _plain_record(outputs.outcome),
                "audit": _plain_record(outputs.audit),
                "offset": outputs.offset,
            },
        ]
        for command_id, outputs in stored.recent
    ]
    return {"format": FORMAT, "state": body, "recent": recent, "last_offset": stored.last_offset}


def _plain_record(record: Record) -> Record:
    """A contract record as JSON: its times (every field named *_utc) as ISO-8601 text."""
    return {k: _time(v) if k.endswith("_utc") else v for k, v in record.items()}


def _revived(record: Record) -> Record:
    return {k: _parse(v) if k.endswith("_utc") else v for k, v in record.items()}


def _plain(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in fields(value)}


def load(data: dict[str, Any]) -> Stored:
    """The Stored that `dump` wrote; a format this code does not know is refused."""
    if data.get("format") != FORMAT:
        raise ValueError(
            f"stored identity state of format {data.get('format')!r}; expected {FORMAT}"
        )
    body = dict(data["state"])
    kind = body.pop("aggregate_type")
    state: State
    if kind == "organization":
        state = Organization(
            org_id=body["org_id"],
            name=body["name"],
            version=body["version"],
            members={u: Role(r) for u, r in body["members"].items()},
            invitations={
                i["invitation_id"]: Invitation(
                    **{**i, "role": Role(i["role"]), "expires_at_utc": _parse(i["expires_at_utc"])}
                )
                for i in body["invitations"]
            },
            api_keys={
                k["key_id"]: ApiKey(
                    **{**k, "role": Role(k["role"]), "expires_at_utc": _parse(k["expires_at_utc"])}
                )
                for k in body["api_keys"]
            },
            connections={
                c["connection_id"]: sso.connection_of(c) for c in body.get("connections", [])
            },
        )
    elif kind == "user":
        state = User(**{**body, "locked_until_utc": _parse(body["locked_until_utc"])})
    elif kind == "session":
        state = Session(
            **{
                **body,
                **{name: _parse(body[name]) for name in _SESSION_TIMES},
                "previous_hashes": tuple(body["previous_hashes"]),
            }
        )
    elif kind == "email":
        state = EmailIndex(**body)
    elif kind == "account":
        state = Account(
            **{
                **body,
                **{name: _parse(body[name]) for name in _ACCOUNT_TIMES},
                "paid_invoices": tuple(body["paid_invoices"]),
                "seen": tuple(body["seen"]),
            }
        )
    elif kind == "flag":
        state = Flag(**{**body, **{name: frozenset(body[name]) for name in _FLAG_SETS}})
    else:
        raise ValueError(f"stored identity state of an unknown aggregate type {kind!r}")
    recent = tuple(
        (
            command_id,
            Outputs(
                tuple(_revived(e) for e in outputs["events"]),
                _revived(outputs["outcome"]),
                _revived(outputs["audit"]),
                outputs.get("offset"),
            ),
        )
        for command_id, outputs in data["recent"]
    )
    return Stored(state, recent, data["last_offset"])
