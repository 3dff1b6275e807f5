"""The identity read models: users, organisations, memberships, invitations, API keys,
sessions and the audit log, folded from `identity.events` and `audit.events` into PostgreSQL
(tables of migration 0004_identity).

Two parts:
- the fold, pure but for the statements it runs: `plan(event)` maps one decoded IdentityEvent
  to the writes it causes (no database), `apply(target, schema, event)` runs them behind the
  version guard of `identity_versions`, and `record_audit(target, schema, record)` inserts one
  AuditRecorded once (by its event_id). The fold rules mirror `identity.user.evolve` and
  `identity.organization.evolve`.
- the runner, `IdentityProjector`: reads both topics under the consumer group
  `<prefix>optibid-identity-projector`, in batches of up to 500 records, each applied in one
  PostgreSQL transaction; the batch's offsets are committed to the group only once that
  transaction has committed (at least once: a record handed over again is a duplicate the guard
  or the audit's key drops).

The version guard: an aggregate's events carry versions 1, 2, 3... An event at or below the
version stored is a duplicate and changes nothing; one more than one above it means events are
missing (a gap): the projector raises VersionGapError naming the aggregate and both versions,
and commits nothing of that batch. An event of a type this code does not know (a newer
producer) moves the version on and changes nothing else, so the guard keeps working.

Records that do not decode (or carry another schema than their topic's) are logged with their
topic, partition and offset, counted in `optibid_identity_projector_skipped_total` and passed.
PostgreSQL away: the batch in hand is retried with exponential back-off, nothing more is read
and no offset is committed meanwhile. One projector per schema at a time.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

import psycopg
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Gauge, Histogram
from psycopg import sql

from projections.errors import ProjectionError
from schemas import kafka_client
from schemas.catalog import TopicCatalog
from schemas.errors import DeserializationError, RegistryUnavailableError
from schemas.offsets import watermarks
from schemas.serde import AvroSerde

log = structlog.get_logger(__name__)

GROUP = "optibid-identity-projector"
BATCH_MAX_RECORDS = 500
EVENT_SCHEMA = "energy.optibid.identity.IdentityEvent"
AUDIT_SCHEMA = "energy.optibid.identity.AuditRecorded"
POLL_INTERVAL_S = 0.02  # wait_for_version's polling period

# every table of the identity read models (truncated by a rebuild; nothing outside the schema)
TABLES = (
    "identity_versions",
    "identity_users",
    "identity_organizations",
    "identity_memberships",
    "identity_invitations",
    "identity_api_keys",
    "identity_sessions",
    "identity_audit",
    "identity_sso_connections",
    "identity_accounts",
    "identity_feature_flags",
)

APPLIED = Counter(
    "optibid_identity_projector_events_total",
    "Identity events and audit entries applied to the read models, by type",
    ["type"],
)
DUPLICATES = Counter(
    "optibid_identity_projector_duplicates_total",
    "Records applied before (at or below the aggregate's version, or a known audit id)",
    ["topic"],
)
SKIPPED = Counter(
    "optibid_identity_projector_skipped_total",
    "Records that do not decode (or carry another schema), logged and passed",
    ["topic"],
)
UNKNOWN = Counter(
    "optibid_identity_projector_unknown_events_total",
    "Events of a type this projector does not know: the version moves on, nothing else",
    ["type"],
)
PG_UP = Gauge("optibid_identity_projector_postgres_up", "Whether PostgreSQL takes writes")
PG_RETRIES = Counter(
    "optibid_identity_projector_postgres_retries_total", "Batch writes retried after an outage"
)
LAG = Gauge("optibid_identity_projector_lag_records", "Records behind the topics' ends")
BATCH_SECONDS = Histogram(
    "optibid_identity_projector_batch_seconds", "Seconds to apply and commit one batch"
)


class VersionGapError(ProjectionError):
    """An aggregate's event more than one version past the version stored: events are missing."""

    def __init__(
        self, aggregate_type: str, aggregate_id: str, stored: int, version: int, where: str = ""
    ) -> None:
        at = f" at {where}" if where else ""
        super().__init__(
            f"identity read models: {aggregate_type} {aggregate_id!r} is at version {stored},"
            f" the next event{at} is version {version}: versions {stored + 1}..{version - 1}"
            " are missing; the projector stops (nothing of this batch was committed)"
        )
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id
        self.stored = stored
        self.version = version


# --- the fold ---------------------------------------------------------------------------------

# Statements by name: `{table}` is the table in the target schema, `%(name)s` a parameter.
STATEMENTS: dict[str, str] = {
    "version_for_update": (
        "SELECT version FROM {identity_versions}"
        " WHERE aggregate_type = %(aggregate_type)s AND aggregate_id = %(aggregate_id)s"
        " FOR UPDATE"
    ),
    "version": (
        "SELECT version FROM {identity_versions}"
        " WHERE aggregate_type = %(aggregate_type)s AND aggregate_id = %(aggregate_id)s"
    ),
    "set_version": (
        "INSERT INTO {identity_versions} (aggregate_type, aggregate_id, version)"
        " VALUES (%(aggregate_type)s, %(aggregate_id)s, %(version)s)"
        " ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET version = EXCLUDED.version"
    ),
    "audit": (
        "INSERT INTO {identity_audit} (event_id, occurred_at, recorded_at, org_id, actor_id,"
        " actor_kind, ip, user_agent, action, outcome, target_type, target_id, detail)"
        " VALUES (%(event_id)s, %(occurred_at)s, %(recorded_at)s, %(org_id)s, %(actor_id)s,"
        " %(actor_kind)s, %(ip)s, %(user_agent)s, %(action)s, %(outcome)s, %(target_type)s,"
        " %(target_id)s, %(detail)s)"
        " ON CONFLICT (event_id) DO NOTHING"
    ),
    # organisation
    "organization_created": (
        "INSERT INTO {identity_organizations} (org_id, name, created_by, created_at)"
        " VALUES (%(org_id)s, %(name)s, %(created_by)s, %(at)s)"
        " ON CONFLICT (org_id) DO UPDATE SET name = EXCLUDED.name,"
        " created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at"
    ),
    "member_added": (
        "INSERT INTO {identity_memberships} (org_id, user_id, role, since)"
        " VALUES (%(org_id)s, %(user_id)s, %(role)s, %(at)s)"
        " ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role,"
        " since = EXCLUDED.since"
    ),
    "role_assigned": (
        "UPDATE {identity_memberships} SET role = %(role)s"
        " WHERE org_id = %(org_id)s AND user_id = %(user_id)s"
    ),
    "member_removed": (
        "DELETE FROM {identity_memberships} WHERE org_id = %(org_id)s AND user_id = %(user_id)s"
    ),
    "member_invited": (
        "INSERT INTO {identity_invitations} (invitation_id, org_id, email, role, token_hash,"
        " expires_at, invited_by, created_at)"
        " VALUES (%(invitation_id)s, %(org_id)s, %(email)s, %(role)s, %(token_hash)s,"
        " %(expires_at)s, %(invited_by)s, %(at)s)"
        " ON CONFLICT (invitation_id) DO UPDATE SET org_id = EXCLUDED.org_id,"
        " email = EXCLUDED.email, role = EXCLUDED.role, token_hash = EXCLUDED.token_hash,"
        " expires_at = EXCLUDED.expires_at, invited_by = EXCLUDED.invited_by,"
        " created_at = EXCLUDED.created_at, accepted_by = NULL, accepted_at = NULL"
    ),
    "invitation_accepted": (
        "UPDATE {identity_invitations} SET accepted_by = %(user_id)s, accepted_at = %(at)s"
        " WHERE invitation_id = %(invitation_id)s AND org_id = %(org_id)s"
    ),
    "api_key_created": (
        "INSERT INTO {identity_api_keys} (key_id, org_id, name, prefix, secret_hash, role,"
        " scope, expires_at, created_by, created_at)"
        " VALUES (%(key_id)s, %(org_id)s, %(name)s, %(prefix)s, %(secret_hash)s, %(role)s,"
        " %(scope)s, %(expires_at)s, %(created_by)s, %(at)s)"
        " ON CONFLICT (key_id) DO UPDATE SET org_id = EXCLUDED.org_id, name = EXCLUDED.name,"
        " prefix = EXCLUDED.prefix, secret_hash = EXCLUDED.secret_hash, role = EXCLUDED.role,"
        " scope = EXCLUDED.scope, expires_at = EXCLUDED.expires_at,"
        " created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,"
        " revoked_at = NULL, revoked_reason = NULL"
    ),
    "api_key_revoked": (
        "UPDATE {identity_api_keys} SET revoked_at = COALESCE(revoked_at, %(at)s),"
        " revoked_reason = COALESCE(revoked_reason, %(reason)s)"
        " WHERE key_id = %(key_id)s AND org_id = %(org_id)s"
    ),
    # user
    "user_registered": (
        "INSERT INTO {identity_users} (user_id, email, display_name, password_sealed,"
        " created_at, updated_at)"
        " VALUES (%(user_id)s, %(email)s, %(display_name)s, %(password_sealed)s, %(at)s, %(at)s)"
        " ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email,"
        " display_name = EXCLUDED.display_name, password_sealed = EXCLUDED.password_sealed,"
        " totp_sealed = NULL, recovery_sealed = NULL, last_totp_step = NULL, failures = 0,"
        " lockouts = 0, locked_until = NULL, disabled = false, erased = false,"
        " created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at"
    ),
    "password_changed": (
        "UPDATE {identity_users} SET password_sealed = %(password_sealed)s, updated_at = %(at)s"
        " WHERE user_id = %(user_id)s"
    ),
    "totp_enrolled": (
        "UPDATE {identity_users} SET totp_sealed = %(totp_sealed)s,"
        " recovery_sealed = %(recovery_sealed)s, last_totp_step = %(totp_step)s,"
        " updated_at = %(at)s"
        " WHERE user_id = %(user_id)s"
    ),
    "sign_in_failed": (
        "UPDATE {identity_users} SET failures = %(failures)s, updated_at = %(at)s"
        " WHERE user_id = %(user_id)s"
    ),
    "user_locked": (
        "UPDATE {identity_users} SET locked_until = %(locked_until)s, lockouts = lockouts + 1,"
        " failures = 0, updated_at = %(at)s WHERE user_id = %(user_id)s"
    ),
    "signed_in": (
        "UPDATE {identity_users} SET failures = 0, lockouts = 0, locked_until = NULL,"
        " last_totp_step = COALESCE(%(totp_step)s::bigint, last_totp_step),"
        " recovery_sealed = COALESCE(NULLIF(%(recovery_sealed)s::text, ''), recovery_sealed),"
        " updated_at = %(at)s WHERE user_id = %(user_id)s"
    ),
    "user_disabled": (
        "UPDATE {identity_users} SET disabled = true, updated_at = %(at)s"
        " WHERE user_id = %(user_id)s"
    ),
    "user_enabled": (
        "UPDATE {identity_users} SET disabled = false, updated_at = %(at)s"
        " WHERE user_id = %(user_id)s"
    ),
    # the sealed values stay as the log has them: without the user's key they are noise
    "user_erased": (
        "UPDATE {identity_users} SET erased = true, disabled = true, email = '',"
        " display_name = '', updated_at = %(at)s WHERE user_id = %(user_id)s"
    ),
    # session
    "session_started": (
        "INSERT INTO {identity_sessions} (session_id, user_id, org_id, amr, ip, user_agent,"
        " created_at, last_used_at, expires_at, idle_timeout_s)"
        " VALUES (%(session_id)s, %(user_id)s, %(org_id)s, %(amr)s, %(ip)s, %(user_agent)s,"
        " %(at)s, %(at)s, %(expires_at)s, %(idle_timeout_s)s)"
        " ON CONFLICT (session_id) DO UPDATE SET user_id = EXCLUDED.user_id,"
        " org_id = EXCLUDED.org_id, amr = EXCLUDED.amr, ip = EXCLUDED.ip,"
        " user_agent = EXCLUDED.user_agent, created_at = EXCLUDED.created_at,"
        " last_used_at = EXCLUDED.last_used_at, expires_at = EXCLUDED.expires_at,"
        " idle_timeout_s = EXCLUDED.idle_timeout_s, revoked_at = NULL, revoked_reason = NULL"
    ),
    "session_refreshed": (
        "UPDATE {identity_sessions} SET last_used_at = GREATEST(last_used_at, %(at)s),"
        " ip = COALESCE(%(ip)s::text, ip), user_agent = COALESCE(%(user_agent)s::text, user_agent)"
        " WHERE session_id = %(session_id)s"
    ),
    "sso_configured": (
        "INSERT INTO {identity_sso_connections} (connection_id, org_id, name, protocol,"
        " allowed_domains, role_mapping, jit, sso_required, allow_idp_initiated, issuer,"
        " client_id, client_secret_sealed, idp_metadata, configured_at) VALUES"
        " (%(connection_id)s, %(org_id)s, %(name)s, %(protocol)s,"
        " string_to_array(%(allowed_domains)s, ','), %(role_mapping)s::jsonb,"
        " COALESCE(%(jit)s, false), COALESCE(%(sso_required)s, false),"
        " COALESCE(%(allow_idp_initiated)s, false), %(issuer)s, %(client_id)s,"
        " %(client_secret_sealed)s, %(idp_metadata)s, %(at)s)"
        " ON CONFLICT (connection_id) DO UPDATE SET name = EXCLUDED.name,"
        " protocol = EXCLUDED.protocol, allowed_domains = EXCLUDED.allowed_domains,"
        " role_mapping = EXCLUDED.role_mapping, jit = EXCLUDED.jit,"
        " sso_required = EXCLUDED.sso_required,"
        " allow_idp_initiated = EXCLUDED.allow_idp_initiated, issuer = EXCLUDED.issuer,"
        " client_id = EXCLUDED.client_id, client_secret_sealed = EXCLUDED.client_secret_sealed,"
        " idp_metadata = EXCLUDED.idp_metadata, configured_at = EXCLUDED.configured_at"
        " WHERE {identity_sso_connections}.org_id = EXCLUDED.org_id"
    ),
    "sso_removed": (
        "DELETE FROM {identity_sso_connections}"
        " WHERE connection_id = %(connection_id)s AND org_id = %(org_id)s"
    ),
    # account: every statement makes the row where it is missing (an account starts free)
    "tier_changed": (
        "INSERT INTO {identity_accounts} (org_id, tier, plan, updated_at)"
        " VALUES (%(org_id)s, %(tier)s, %(tier)s, %(at)s)"
        " ON CONFLICT (org_id) DO UPDATE SET tier = EXCLUDED.tier,"
        " plan = CASE WHEN %(reason)s::text = 'payment failed' THEN {identity_accounts}.plan"
        " ELSE EXCLUDED.plan END, updated_at = EXCLUDED.updated_at"
    ),
    "stripe_customer_linked": (
        "INSERT INTO {identity_accounts} (org_id, stripe_customer_id, updated_at)"
        " VALUES (%(org_id)s, %(stripe_customer_id)s, %(at)s)"
        " ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = EXCLUDED.stripe_customer_id,"
        " updated_at = EXCLUDED.updated_at"
    ),
    "subscription_activated": (
        "INSERT INTO {identity_accounts} (org_id, plan, status, stripe_customer_id,"
        " stripe_subscription_id, period_start, period_end, updated_at)"
        " VALUES (%(org_id)s, %(tier)s, 'active', %(stripe_customer_id)s,"
        " %(stripe_subscription_id)s, %(period_start)s, %(period_end)s, %(at)s)"
        " ON CONFLICT (org_id) DO UPDATE SET plan = EXCLUDED.plan,"
        " status = CASE WHEN {identity_accounts}.status = 'past_due' THEN 'past_due'"
        " ELSE 'active' END,"
        " stripe_customer_id = COALESCE(EXCLUDED.stripe_customer_id,"
        " {identity_accounts}.stripe_customer_id),"
        " stripe_subscription_id = EXCLUDED.stripe_subscription_id,"
        " period_start = COALESCE(EXCLUDED.period_start, {identity_accounts}.period_start),"
        " period_end = COALESCE(EXCLUDED.period_end, {identity_accounts}.period_end),"
        " updated_at = EXCLUDED.updated_at"
    ),
    "invoice_paid": (
        "INSERT INTO {identity_accounts} (org_id, period_start, period_end, updated_at)"
        " VALUES (%(org_id)s, %(period_start)s, %(period_end)s, %(at)s)"
        " ON CONFLICT (org_id) DO UPDATE SET"
        " status = CASE WHEN {identity_accounts}.status IN ('past_due', 'active') THEN 'active'"
        " ELSE {identity_accounts}.status END, grace_until = NULL,"
        " period_start = COALESCE(EXCLUDED.period_start, {identity_accounts}.period_start),"
        " period_end = COALESCE(EXCLUDED.period_end, {identity_accounts}.period_end),"
        " updated_at = EXCLUDED.updated_at"
    ),
    "payment_failed": (
        "INSERT INTO {identity_accounts} (org_id, status, grace_until, updated_at)"
        " VALUES (%(org_id)s, 'past_due', %(grace_until)s, %(at)s)"
        " ON CONFLICT (org_id) DO UPDATE SET status = 'past_due',"
        " grace_until = EXCLUDED.grace_until, updated_at = EXCLUDED.updated_at"
    ),
    "subscription_canceled": (
        "INSERT INTO {identity_accounts} (org_id, status, updated_at)"
        " VALUES (%(org_id)s, 'canceled', %(at)s)"
        " ON CONFLICT (org_id) DO UPDATE SET status = 'canceled', plan = 'free',"
        " stripe_subscription_id = NULL, grace_until = NULL, updated_at = EXCLUDED.updated_at"
    ),
    "feature_flag_set": (
        "INSERT INTO {identity_feature_flags} (flag, enabled, percentage, roles, org_ids_on,"
        " org_ids_off, updated_at) VALUES (%(flag)s, %(enabled)s, %(percentage)s,"
        " array_remove(string_to_array(%(roles)s, ','), ''),"
        " array_remove(string_to_array(%(org_ids_on)s, ','), ''),"
        " array_remove(string_to_array(%(org_ids_off)s, ','), ''), %(at)s)"
        " ON CONFLICT (flag) DO UPDATE SET enabled = EXCLUDED.enabled,"
        " percentage = EXCLUDED.percentage, roles = EXCLUDED.roles,"
        " org_ids_on = EXCLUDED.org_ids_on, org_ids_off = EXCLUDED.org_ids_off,"
        " updated_at = EXCLUDED.updated_at"
    ),
    "feature_flag_removed": "DELETE FROM {identity_feature_flags} WHERE flag = %(flag)s",
    "session_revoked": (
        "UPDATE {identity_sessions} SET revoked_at = COALESCE(revoked_at, %(at)s),"
        " revoked_reason = COALESCE(revoked_reason, %(reason)s)"
        " WHERE session_id = %(session_id)s"
    ),
}

_PARAM = re.compile(r"%\((\w+)\)s")


def statement_parameters(name: str) -> frozenset[str]:
    """The parameters statement `name` takes."""
    return frozenset(_PARAM.findall(STATEMENTS[name]))


@cache
def statement(schema: str, name: str) -> sql.Composed:
    """Statement `name` on the tables of `schema`."""
    tables = {table: sql.Identifier(schema, table) for table in TABLES}
    return sql.SQL(STATEMENTS[name]).format(**tables)


@dataclass(frozen=True)
class Write:
    """One statement of STATEMENTS with its parameters."""

    statement: str
    params: Mapping[str, Any]


Planner = Callable[[Mapping[str, Any]], list[Write]]


def _at(event: Mapping[str, Any]) -> datetime:
    at: datetime = event["occurred_at_utc"]
    return at


def _writes(key: str, statement_name: str, *same: str, **renamed: str) -> Planner:
    """A planner of one write on the event's aggregate: the aggregate's id as parameter
    `key`, its time as `at`, the event's fields `same` under their own names and `renamed`
    (parameter: event field) under the statement's."""
    fields = {**{name: name for name in same}, **renamed}

    def planner(event: Mapping[str, Any]) -> list[Write]:
        params = {param: event.get(name) for param, name in fields.items()}
        return [Write(statement_name, {key: event["aggregate_id"], "at": _at(event), **params})]

    return planner


def _org(statement_name: str, *same: str, **renamed: str) -> Planner:
    """A write on the organisation of the event's aggregate."""
    return _writes("org_id", statement_name, *same, **renamed)


def _user(statement_name: str, *same: str, **renamed: str) -> Planner:
    """A write on the user of the event's aggregate (the event's user_id may be null)."""
    return _writes("user_id", statement_name, *same, **renamed)


def _session(statement_name: str, *same: str, **renamed: str) -> Planner:
    """A write on the session of the event's aggregate."""
    return _writes("session_id", statement_name, *same, **renamed)


_start_session = _session(
    "session_started",
    "user_id",
    "org_id",
    "ip",
    "user_agent",
    "idle_timeout_s",
    expires_at="expires_at_utc",
)


def _session_started(event: Mapping[str, Any]) -> list[Write]:
    (write,) = _start_session(event)
    return [Write(write.statement, {**write.params, "amr": event.get("amr") or ""})]


def _nothing(_event: Mapping[str, Any]) -> list[Write]:
    """An event the read models keep nothing of (its version still counts)."""
    return []


_PLANNERS: dict[str, Planner] = {
    "OrganizationCreated": _org("organization_created", "name", "created_by"),
    "MemberAdded": _org("member_added", "user_id", "role"),
    "RoleAssigned": _org("role_assigned", "user_id", "role"),
    "MemberRemoved": _org("member_removed", "user_id"),
    "MemberInvited": _org(
        "member_invited",
        "invitation_id",
        "email",
        "role",
        "token_hash",
        expires_at="expires_at_utc",
        invited_by="actor_id",
    ),
    "InvitationAccepted": _org("invitation_accepted", "invitation_id", "user_id"),
    "ApiKeyCreated": _org(
        "api_key_created",
        "key_id",
        "name",
        "prefix",
        "secret_hash",
        "role",
        "scope",
        "created_by",
        expires_at="expires_at_utc",
    ),
    "ApiKeyRevoked": _org("api_key_revoked", "key_id", "reason"),
    "UserRegistered": _user("user_registered", "email", "display_name", "password_sealed"),
    "PasswordChanged": _user("password_changed", "password_sealed"),
    "TotpEnrolled": _user("totp_enrolled", "totp_sealed", "recovery_sealed", "totp_step"),
    "SignInFailed": _user("sign_in_failed", "failures"),
    "UserLocked": _user("user_locked", locked_until="locked_until_utc"),
    "SignedIn": _user("signed_in", "totp_step", "recovery_sealed"),
    "UserDisabled": _user("user_disabled"),
    "UserEnabled": _user("user_enabled"),
    "UserErased": _user("user_erased"),
    "SsoConfigured": _org(
        "sso_configured",
        "connection_id",
        "name",
        "protocol",
        "allowed_domains",
        "role_mapping",
        "jit",
        "sso_required",
        "allow_idp_initiated",
        "issuer",
        "client_id",
        "client_secret_sealed",
        "idp_metadata",
    ),
    "SsoRemoved": _org("sso_removed", "connection_id"),
    "SessionStarted": _session_started,
    "SessionRefreshed": _session("session_refreshed", "ip", "user_agent"),
    "SessionRevoked": _session("session_revoked", "reason"),
    "TierChanged": _org("tier_changed", "tier", "reason"),
    "StripeCustomerLinked": _org("stripe_customer_linked", "stripe_customer_id"),
    "SubscriptionActivated": _org(
        "subscription_activated",
        "tier",
        "stripe_customer_id",
        "stripe_subscription_id",
        period_start="period_start_utc",
        period_end="period_end_utc",
    ),
    "InvoicePaid": _org(
        "invoice_paid", period_start="period_start_utc", period_end="period_end_utc"
    ),
    "PaymentFailed": _org("payment_failed", grace_until="grace_until_utc"),
    "SubscriptionCanceled": _org("subscription_canceled"),
    "DowngradedForNonPayment": _nothing,  # the TierChanged after it says it
    "FeatureFlagSet": _writes(
        "flag", "feature_flag_set", "enabled", "percentage", "roles", "org_ids_on", "org_ids_off"
    ),
    "FeatureFlagRemoved": _writes("flag", "feature_flag_removed"),
    # the email index is the email aggregate's own state; no read model keeps it
    "EmailClaimed": _nothing,
    "EmailReleased": _nothing,
}
KNOWN_EVENTS = frozenset(_PLANNERS)


def plan(event: Mapping[str, Any]) -> list[Write]:
    """The writes one decoded IdentityEvent causes (none for a type not known here)."""
    planner = _PLANNERS.get(str(event["type"]))
    return planner(event) if planner is not None else []


def audit_params(record: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of the audit insert for one decoded AuditRecorded."""
    params = {name: record.get(name) for name in statement_parameters("audit")}
    params["occurred_at"] = record["occurred_at_utc"]
    params["recorded_at"] = record["recorded_at_utc"]
    return params


Target = psycopg.Connection[Any] | psycopg.Cursor[Any]


def apply(target: Target, schema: str, event: Mapping[str, Any], *, where: str = "") -> bool:
    """Fold one decoded IdentityEvent into the read models of `schema`, in the caller's
    transaction. False for a duplicate (at or below the version stored); raises
    VersionGapError (`where` names the record in it) for a version past the next."""
    aggregate = {
        "aggregate_type": str(event["aggregate_type"]),
        "aggregate_id": str(event["aggregate_id"]),
    }
    version = int(event["aggregate_version"])
    row = target.execute(statement(schema, "version_for_update"), aggregate).fetchone()
    stored = int(row[0]) if row is not None else 0
    if version <= stored:
        return False
    if version != stored + 1:
        raise VersionGapError(
            aggregate["aggregate_type"], aggregate["aggregate_id"], stored, version, where
        )
    kind = str(event["type"])
    if kind not in KNOWN_EVENTS:
        UNKNOWN.labels(kind).inc()
        log.warning(
            "identity_projector.unknown_event",
            type=kind,
            version=version,
            where=where,
            **aggregate,
        )
    for write in plan(event):
        cursor = target.execute(statement(schema, write.statement), write.params)
        if cursor.rowcount == 0:  # the row the event is about was never created
            log.warning(
                "identity_projector.no_row",
                type=kind,
                statement=write.statement,
                version=version,
                where=where,
                **aggregate,
            )
    target.execute(statement(schema, "set_version"), {**aggregate, "version": version})
    return True


def record_audit(target: Target, schema: str, record: Mapping[str, Any]) -> bool:
    """Insert one decoded AuditRecorded; False when its event_id is there already."""
    cursor = target.execute(statement(schema, "audit"), audit_params(record))
    return cursor.rowcount == 1


def stored_version(
    conn: psycopg.Connection[Any], schema: str, aggregate_type: str, aggregate_id: str
) -> int:
    """The version of an aggregate the read models hold (0: none of its events yet)."""
    params = {"aggregate_type": aggregate_type, "aggregate_id": aggregate_id}
    row = conn.execute(statement(schema, "version"), params).fetchone()
    return int(row[0]) if row is not None else 0


def wait_for_version(
    conn: psycopg.Connection[Any],
    schema: str,
    aggregate_type: str,
    aggregate_id: str,
    version: int,
    timeout_s: float,
) -> bool:
    """Whether the read models reach `version` of the aggregate within `timeout_s`, polling
    identity_versions every 20 ms (read-your-writes after a command). Each poll is its own
    transaction (a savepoint inside the caller's, which must be READ COMMITTED to see it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if conn.autocommit:
            current = stored_version(conn, schema, aggregate_type, aggregate_id)
        else:
            with conn.transaction():
                current = stored_version(conn, schema, aggregate_type, aggregate_id)
        if current >= version:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(POLL_INTERVAL_S, remaining))


def truncate(conn: psycopg.Connection[Any], schema: str) -> None:
    """Empty every identity read model of `schema` (only these tables: never the keys)."""
    tables = sql.SQL(", ").join(sql.Identifier(schema, t) for t in TABLES)
    with conn.transaction():
        conn.execute(sql.SQL("TRUNCATE {}").format(tables))


# --- the runner -------------------------------------------------------------------------------


@dataclass
class Progress:
    """Where a run stands: records read (applied, duplicates, skipped) and, for a run to the
    end, how many there were to read when it began."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    total: int = 0
    lag: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0


class StoppedError(Exception):
    """Asked to stop while waiting for a server."""


_Partition = tuple[str, int]
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Item:
    """One decoded record of a batch: an event (audit False) or an audit entry."""

    record: dict[str, Any]
    audit: bool
    where: str


@dataclass
class _Batch:
    items: list[_Item] = field(default_factory=list)
    offsets: dict[_Partition, int] = field(default_factory=dict)  # next offset per partition
    records: int = 0
    skipped: int = 0


@dataclass
class _Written:
    applied: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)


class IdentityProjector:
    """Projects identity.events and audit.events into the identity read models of `schema`."""

    def __init__(
        self,
        bootstrap: str,
        serde: AvroSerde,
        catalog: TopicCatalog,
        postgres_dsn: str,
        schema: str,
        *,
        batch_max_records: int = BATCH_MAX_RECORDS,
        poll_timeout_s: float = 0.5,
        retry_max_s: float = 5.0,
    ) -> None:
        if batch_max_records < 1:
            raise ValueError(f"batch_max_records must be at least 1, not {batch_max_records}")
        self.bootstrap = bootstrap
        self.serde = serde
        self.catalog = catalog
        self.postgres_dsn = postgres_dsn
        self.schema = schema
        self.batch_max_records = batch_max_records
        self.poll_timeout_s = poll_timeout_s
        self.retry_max_s = retry_max_s
        self.group_id = f"{catalog.prefix}{GROUP}"
        self.events_topic = catalog.identity("events").name
        self.audit_topic = catalog.audit().name
        self._schemas = {self.events_topic: EVENT_SCHEMA, self.audit_topic: AUDIT_SCHEMA}
        self._conn: psycopg.Connection[Any] | None = None
        self._log = log.bind(schema=schema, group=self.group_id)
        self.progress = Progress()

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _connection(self, stop: threading.Event) -> psycopg.Connection[Any]:
        """The connection, (re)connecting with back-off while PostgreSQL is away."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        delay = 0.1
        while True:
            try:
                self._conn = psycopg.connect(self.postgres_dsn, connect_timeout=5)
                PG_UP.set(1)
                return self._conn
            except psycopg.OperationalError as exc:
                PG_UP.set(0)
                self._log.warning(
                    "identity_projector.postgres_unavailable", error=str(exc).strip(), retry_s=delay
                )
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.retry_max_s)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop_connection()

    def _check_tables(self, conn: psycopg.Connection[Any]) -> None:
        try:
            with conn.transaction():
                conn.execute(
                    statement(self.schema, "version"), {"aggregate_type": "", "aggregate_id": ""}
                )
        except psycopg.errors.UndefinedTable as exc:
            raise ProjectionError(
                f"schema {self.schema!r} has no identity read models: run `optibid db migrate`"
            ) from exc

    # --- runs ---------------------------------------------------------------------------------

    def rebuild(
        self, stop: threading.Event, on_progress: Callable[[Progress], None] | None = None
    ) -> Progress:
        """Empty the identity read models and fold both topics again from their first offset
        up to the ends they have now; the group's offsets follow, so a `run` afterwards goes
        on from there. Stop any other projector of the schema first."""
        consumer = self._consumer()
        try:
            partitions = self._partitions(consumer)
            # the group back to the start before the tables are emptied: a crash in between
            # replays onto full tables (duplicates, dropped), never from the middle onto empty
            starts = [
                TopicPartition(t, p, self._watermarks(consumer, t, p)[0]) for t, p in partitions
            ]
            self._commit(consumer, starts)
        finally:
            consumer.close()

        def empty(conn: psycopg.Connection[Any]) -> None:
            self._check_tables(conn)
            truncate(conn, self.schema)

        try:
            self._with_postgres(empty, stop, "emptying the identity read models")
        except StoppedError:
            return Progress()
        self._log.info("identity_projector.truncated", tables=list(TABLES))
        return self.run(stop, until_caught_up=True, from_beginning=True, on_progress=on_progress)

    def run(
        self,
        stop: threading.Event,
        until_caught_up: bool = False,
        *,
        from_beginning: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Project until `stop` is set or, with `until_caught_up`, until every partition is
        read up to the end it had when the run began. Starts at the group's committed offsets
        (the first offset where none), or at the first offset with `from_beginning`. Raises
        VersionGapError on a gap and ProjectionError for an event the database refuses."""
        self.progress = Progress()
        try:
            self._with_postgres(self._check_tables, stop, "the identity read models")
        except StoppedError:
            return self.progress
        consumer = self._consumer()
        try:
            positions, ends = self._start(consumer, from_beginning)
            self.progress.total = sum(max(end - positions[tp], 0) for tp, end in ends.items())
            self._log.info(
                "identity_projector.started",
                topics=[self.events_topic, self.audit_topic],
                until_caught_up=until_caught_up,
                from_beginning=from_beginning,
                behind=self.progress.total,
            )
            self._loop(consumer, positions, ends, stop, until_caught_up, on_progress)
        except StoppedError:
            pass
        finally:
            consumer.close()
        self._log.info(
            "identity_projector.stopped",
            records=self.progress.records,
            applied=self.progress.applied,
            duplicates=self.progress.duplicates,
            skipped=self.progress.skipped,
        )
        return self.progress

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                **kafka_client.librdkafka(),
                "bootstrap.servers": self.bootstrap,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "log_level": 3,
            }
        )

    def _partitions(self, consumer: Consumer) -> list[_Partition]:
        found: list[_Partition] = []
        for topic in (self.events_topic, self.audit_topic):
            metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                raise ProjectionError(
                    f"topic {topic} does not exist; run `optibid topics create` first"
                )
            found += [(topic, p) for p in sorted(metadata.partitions)]
        return found

    def _watermarks(self, consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
        try:
            return watermarks(consumer, TopicPartition(topic, partition))
        except KafkaException as exc:
            raise ProjectionError(
                f"no offsets for {topic}[{partition}] from the broker: {exc}"
            ) from exc

    def _start(
        self, consumer: Consumer, from_beginning: bool
    ) -> tuple[dict[_Partition, int], dict[_Partition, int]]:
        """Assign every partition of both topics at its start; (positions, ends)."""
        partitions = self._partitions(consumer)
        committed: dict[_Partition, int] = {}
        if not from_beginning:
            asked = [TopicPartition(t, p) for t, p in partitions]
            for tp in consumer.committed(asked, timeout=10):
                if tp.error is None and tp.offset >= 0:
                    committed[tp.topic, tp.partition] = tp.offset
        positions: dict[_Partition, int] = {}
        ends: dict[_Partition, int] = {}
        for key in partitions:
            low, high = self._watermarks(consumer, *key)
            positions[key] = max(committed.get(key, low), low)
            ends[key] = high
        consumer.assign([TopicPartition(t, p, positions[t, p]) for t, p in partitions])
        return positions, ends

    def _loop(
        self,
        consumer: Consumer,
        positions: dict[_Partition, int],
        ends: dict[_Partition, int],
        stop: threading.Event,
        until_caught_up: bool,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        def caught_up() -> bool:
            return all(positions[tp] >= end for tp, end in ends.items())

        def report() -> None:
            self.progress.lag = sum(max(end - positions[tp], 0) for tp, end in ends.items())
            LAG.set(self.progress.lag)
            if on_progress is not None:
                on_progress(self.progress)

        report()
        while not stop.is_set() and not (until_caught_up and caught_up()):
            first = consumer.poll(self.poll_timeout_s)
            if first is None:
                if until_caught_up:
                    self._skip_markers(consumer, positions, ends)
                report()
                continue
            # then whatever is fetched already, without waiting: a batch under load, no delay
            # for a lone event (the API waits for it)
            messages = [first, *consumer.consume(self.batch_max_records - 1, timeout=0)]
            batch = self._read(messages, stop)
            if batch.offsets:
                began = time.monotonic()
                written = self._write(batch, stop)
                self._commit(
                    consumer, [TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()]
                )
                BATCH_SECONDS.observe(time.monotonic() - began)
                positions.update(batch.offsets)
                self._count(batch, written)
            report()

    @staticmethod
    def _skip_markers(
        consumer: Consumer, positions: dict[_Partition, int], ends: dict[_Partition, int]
    ) -> None:
        """Move positions past offsets that hold no record (transaction markers), as the
        consumer's own positions say, when nothing more arrives."""
        behind = [TopicPartition(t, p) for (t, p), end in ends.items() if positions[t, p] < end]
        if not behind:
            return
        for tp in consumer.position(behind):
            if tp.offset >= 0 and tp.offset > positions[tp.topic, tp.partition]:
                positions[tp.topic, tp.partition] = tp.offset

    def _read(self, messages: list[Message], stop: threading.Event) -> _Batch:
        batch = _Batch()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal():
                    raise ProjectionError(f"kafka consumer failed: {error}")
                self._log.warning("identity_projector.kafka_error", error=str(error))
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None or offset is None:
                continue
            batch.offsets[topic, partition] = offset + 1
            batch.records += 1
            value = message.value()
            where = f"{topic}[{partition}]@{offset}"
            if value is None:
                continue  # a tombstone: nothing to fold
            try:
                full_name, record = self._decode(value, stop)
                expected = self._schemas[topic]
                if full_name != expected:
                    raise DeserializationError(f"{topic} carries {expected}, not {full_name}")
            except DeserializationError as exc:
                batch.skipped += 1
                SKIPPED.labels(topic).inc()
                self._log.error(
                    "identity_projector.undecodable",
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    error=str(exc),
                )
                continue
            batch.items.append(_Item(record, topic == self.audit_topic, where))
        return batch

    def _decode(self, value: bytes, stop: threading.Event) -> tuple[str, dict[str, Any]]:
        delay = 0.1
        while True:
            try:
                return self.serde.decode(value)
            except RegistryUnavailableError as exc:  # an outage, not a bad record
                self._log.warning("identity_projector.registry_unavailable", error=str(exc))
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.retry_max_s)

    def _with_postgres(
        self, work: Callable[[psycopg.Connection[Any]], _T], stop: threading.Event, what: str
    ) -> _T:
        """`work` on the connection, waiting out PostgreSQL outages with exponential back-off
        (`work` runs again whole: it is one transaction)."""
        delay = 0.1
        outage_began: float | None = None
        while True:
            conn = self._connection(stop)
            try:
                done = work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop_connection()
                PG_UP.set(0)
                PG_RETRIES.inc()
                if outage_began is None:
                    outage_began = time.monotonic()
                self._log.warning(
                    "identity_projector.postgres_unavailable",
                    waiting=what,
                    error=str(exc).strip(),
                    retry_s=delay,
                )
                if stop.wait(delay):
                    raise StoppedError from exc
                delay = min(delay * 2, self.retry_max_s)
                continue
            PG_UP.set(1)
            if outage_began is not None:
                self._log.info(
                    "identity_projector.postgres_available",
                    done=what,
                    paused_s=round(time.monotonic() - outage_began, 1),
                )
            return done

    def _write(self, batch: _Batch, stop: threading.Event) -> _Written:
        """Apply the batch in one transaction, waiting out PostgreSQL outages (no offset is
        committed meanwhile, nothing more is read)."""
        return self._with_postgres(
            lambda conn: self._transaction(conn, batch),
            stop,
            f"a batch of {batch.records} records kept for retry",
        )

    def _transaction(self, conn: psycopg.Connection[Any], batch: _Batch) -> _Written:
        written = _Written()
        with conn.transaction(), conn.cursor() as cursor:
            for item in batch.items:
                record = item.record
                try:
                    if item.audit:
                        kind = "AuditRecorded"
                        fresh = record_audit(cursor, self.schema, record)
                    else:
                        kind = str(record["type"])
                        fresh = apply(cursor, self.schema, record, where=item.where)
                except VersionGapError as exc:
                    self._log.error(
                        "identity_projector.version_gap",
                        aggregate_type=exc.aggregate_type,
                        aggregate_id=exc.aggregate_id,
                        stored=exc.stored,
                        version=exc.version,
                        where=item.where,
                    )
                    raise
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except psycopg.DatabaseError as exc:
                    raise ProjectionError(
                        f"identity read models: the database refused {item.where}"
                        f" ({_describe(record, item.audit)}): {str(exc).strip()}"
                    ) from exc
                counts = written.applied if fresh else written.duplicates
                key = kind if fresh else ("audit" if item.audit else "event")
                counts[key] = counts.get(key, 0) + 1
        return written

    def _commit(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Commit offsets to the group; a failure is logged (the records come again, and are
        dropped as duplicates)."""
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._log.warning(
                "identity_projector.commit_failed",
                detail="these records may be read again (harmless)",
                error=str(exc),
            )

    def _count(self, batch: _Batch, written: _Written) -> None:
        progress = self.progress
        progress.records += batch.records
        progress.skipped += batch.skipped
        for kind, count in written.applied.items():
            APPLIED.labels(kind).inc(count)
            progress.applied += count
        for kind, count in written.duplicates.items():
            topic = self.audit_topic if kind == "audit" else self.events_topic
            DUPLICATES.labels(topic).inc(count)
            progress.duplicates += count


def _describe(record: Mapping[str, Any], audit: bool) -> str:
    if audit:
        return f"audit entry {record.get('event_id')}"
    return (
        f"{record.get('type')} of {record.get('aggregate_type')} {record.get('aggregate_id')}"
        f" version {record.get('aggregate_version')}"
    )
