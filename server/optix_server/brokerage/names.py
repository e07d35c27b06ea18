"""Brokerage resource names: connections, accounts (with the `-` wildcard), providers and the
portfolio, all under `users/{user}` where `{user}` is the caller's id or `me`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from optix.brokerage.v1 import account_pb2, connection_pb2, portfolio_pb2, transaction_pb2
from optix_server.infra import errors
from optix_server.infra.aip.names import ME, ChildPattern

ALL = "-"
CONNECTIONS = ChildPattern("connections", connection_pb2.Connection.DESCRIPTOR.full_name)
ACCOUNT_TYPE = account_pb2.Account.DESCRIPTOR.full_name
PORTFOLIO_TYPE = portfolio_pb2.Portfolio.DESCRIPTOR.full_name
TRANSACTION_TYPE = transaction_pb2.Transaction.DESCRIPTOR.full_name
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PROVIDER = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def _invalid(field: str, expected: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(
        f"{field} is not a valid resource name",
        [errors.FieldViolation(field, f"expected {expected}, with {{user}} your user id or `me`")],
    )


def _not_found(name: str, resource_type: str) -> errors.NotFound:
    return errors.NotFound(f"{name} not found", resource_type=resource_type, resource_name=name)


def connection_name(user_id: str, connection_id: str) -> str:
    """`users/{user}/connections/{connection}`."""
    return CONNECTIONS.format(user_id, connection_id)


def account_name(user_id: str, connection_id: str, account_id: str) -> str:
    """`users/{user}/connections/{connection}/accounts/{account}`."""
    return f"{connection_name(user_id, connection_id)}/accounts/{account_id}"


def transaction_name(user_id: str, connection_id: str, account_id: str, tx_id: str) -> str:
    """`.../accounts/{account}/transactions/{transaction}`."""
    return f"{account_name(user_id, connection_id, account_id)}/transactions/{tx_id}"


def provider_name(provider_id: str) -> str:
    """`providers/{provider}`."""
    return f"providers/{provider_id}"


def portfolio_name(user_id: str) -> str:
    """`users/{user}/portfolio`."""
    return f"users/{user_id}/portfolio"


def parse_provider(text: str, field: str = "provider") -> str:
    """The id of `providers/{provider}`; INVALID_ARGUMENT when malformed."""
    kind, sep, provider = text.partition("/")
    if kind != "providers" or not sep or not _PROVIDER.fullmatch(provider):
        raise errors.InvalidArgument(
            f"{field} is not a provider name",
            [errors.FieldViolation(field, "expected providers/{provider}, e.g. providers/paper")],
        )
    return provider


def _user(part: str, caller: str, name: str, resource_type: str) -> None:
    if part not in (ME, caller):
        raise _not_found(name, resource_type)


def parse_portfolio(text: str, caller: str, field: str = "name") -> str:
    """The user id of `users/{user}/portfolio`."""
    parts = text.split("/")
    if len(parts) != 3 or parts[0] != "users" or not parts[1] or parts[2] != "portfolio":
        raise _invalid(field, "users/{user}/portfolio")
    _user(parts[1], caller, text, PORTFOLIO_TYPE)
    return caller


def parse_connection_or_all(text: str, caller: str, field: str) -> str | None:
    """The connection id of `users/{user}/connections/{connection}`, None for `-` (all)."""
    parts = text.split("/")
    if len(parts) == 4 and parts[3] == ALL and parts[0] == "users" and parts[2] == "connections":
        if not parts[1]:
            raise _invalid(field, "users/{user}/connections/{connection}")
        _user(parts[1], caller, text, CONNECTIONS.resource_type)
        return None
    return CONNECTIONS.parse(text, caller, field=field)


@dataclass(frozen=True, slots=True)
class AccountScope:
    """Which accounts a parent names: one, all of a connection, or all (None = any)."""

    connection_id: str | None
    account_id: str | None


def parse_account_parent(text: str, caller: str, field: str = "parent") -> AccountScope:
    """`users/{user}/connections/{c}/accounts/{a}` where `{a}`, or both, may be `-`."""
    expected = "users/{user}/connections/{connection}/accounts/{account}"
    parts = text.split("/")
    if (
        len(parts) != 6
        or parts[0] != "users"
        or parts[2] != "connections"
        or parts[4] != "accounts"
        or not all(parts[i] for i in (1, 3, 5))
    ):
        raise _invalid(field, expected)
    _user(parts[1], caller, text, ACCOUNT_TYPE)
    connection, account = parts[3], parts[5]
    if connection == ALL and account != ALL:
        raise _invalid(field, "an account under a named connection (`-` for the account too)")
    for part in (connection, account):
        if part != ALL and not _ID.fullmatch(part):
            raise _not_found(text, ACCOUNT_TYPE)
    return AccountScope(
        None if connection == ALL else connection, None if account == ALL else account
    )


def account_not_found(name: str) -> errors.NotFound:
    """The NotFound of an account name."""
    return _not_found(name, ACCOUNT_TYPE)
