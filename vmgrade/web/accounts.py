"""Accounts, passwords (argon2), ending sessions, and the failed-login limits.

Pure library functions over a SQLAlchemy session: the CLI (`vmgrade users`)
and the web app share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import VmgradeError
from .tables import ROLES, LoginFailure, Team, User, utcnow

MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5  # per (username, client address) within FAILED_LOGIN_WINDOW
# Per username over all addresses: guesses spread over many addresses (or forged
# X-Forwarded-For headers behind a trusted proxy) still stop.
MAX_FAILED_LOGINS_PER_ACCOUNT = 20
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
ANY_ADDRESS = "*"  # the ``ip`` of the per-account counter (no client address is "*")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

# INSERT ... ON CONFLICT DO NOTHING, where the dialect has it.
_INSERT_IGNORING = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the username is unknown, so both cases cost one argon2 hash.
_DUMMY_HASH = _hasher.hash("vmgrade-no-such-user")


class AccountError(VmgradeError):
    """A bad account request (duplicate or unknown username, weak password, unknown role)."""

    code = "account_error"


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    locked_for_s: float = 0.0  # > 0: refused without checking the password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_user(session: Session, username: str, password: str, role: str, team: str) -> User:
    """Create a user (and the team, if new). Commits.

    Raises
    ------
    AccountError
        Bad username, role or password, or the username is taken.
    """
    if not USERNAME_RE.match(username or ""):
        raise AccountError(f"username {username!r}: use 1-64 letters, digits or _ . @ -")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    _check_password(password)
    team = (team or "").strip()
    if not team:
        raise AccountError("team name is empty")
    if session.scalar(select(User).where(func.lower(User.username) == username.lower())) is not None:
        raise AccountError(f"username {username!r} is taken")
    team_row = session.scalar(select(Team).where(Team.name == team))
    if team_row is None:
        team_row = Team(name=team)
        session.add(team_row)
    user = User(username=username, password_hash=hash_password(password), role=role, team=team_row)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent add of the same name
        session.rollback()
        raise AccountError(f"username {username!r} is taken") from exc
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def find_user(session: Session, username: str) -> User:
    """The user named ``username`` (case-insensitive).

    Raises
    ------
    AccountError
        No such user.
    """
    user = session.scalar(select(User).where(func.lower(User.username) == (username or "").lower()))
    if user is None:
        raise AccountError(f"no user {username!r}")
    return user


def revoke_sessions(session: Session, user_id: int) -> None:
    """End every session of the user: their cookies stop working at the next request. Commits."""
    session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))
    session.commit()


def set_password(session: Session, username: str, password: str) -> User:
    """Change a password, end the user's sessions and lift their login locks. Commits.

    Raises
    ------
    AccountError
        No such user, or the password is too short.
    """
    _check_password(password)
    user = find_user(session, username)
    user.password_hash = hash_password(password)
    session.execute(delete(LoginFailure).where(LoginFailure.username == user.username.lower()))
    session.commit()
    revoke_sessions(session, user.id)
    session.refresh(user)
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Enable or disable a user; disabling ends their sessions. Commits.

    Raises
    ------
    AccountError
        No such user.
    """
    user = find_user(session, username)
    user.active = active
    session.commit()
    if not active:
        revoke_sessions(session, user.id)
    session.refresh(user)
    return user


def authenticate(session: Session, username: str, password: str, ip: str, *,
                 now: datetime | None = None) -> LoginResult:
    """Check a login, counting attempts per (username, ip) and per username; commits the counts.

    Each attempt is counted *before* its password is checked, by an atomic
    ``UPDATE ... WHERE failures < limit`` in the transaction that checks the lock, so
    parallel guesses get at most the limit of checks between them; a successful login
    takes its attempt back. After ``MAX_FAILED_LOGINS`` attempts within
    ``FAILED_LOGIN_WINDOW`` from one address (``MAX_FAILED_LOGINS_PER_ACCOUNT`` from
    all addresses together) the username is locked for ``LOCKOUT`` at that address
    (everywhere): even the right password is refused until then.
    """
    now = now or utcnow()
    key = (username or "").lower()[:64]
    ip = (ip or "unknown")[:64]
    if ip == ANY_ADDRESS:
        ip = "unknown"
    locked_for_s = _count_attempt(session, key, ip, now)
    if locked_for_s:
        return LoginResult(None, locked_for_s)

    user = session.scalar(select(User).where(func.lower(User.username) == key))
    ok = _verify(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is not None and ok and user.active:
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        # The address's count is forgotten; the account's gets this attempt back.
        session.execute(delete(LoginFailure).where(LoginFailure.username == key, LoginFailure.ip == ip))
        limit = MAX_FAILED_LOGINS_PER_ACCOUNT
        session.execute(
            update(LoginFailure)
            .where(LoginFailure.username == key, LoginFailure.ip == ANY_ADDRESS, LoginFailure.failures > 0)
            .values(failures=LoginFailure.failures - 1,
                    locked_until=case((LoginFailure.failures - 1 >= limit, LoginFailure.locked_until),
                                      else_=None)))
        session.commit()
        return LoginResult(user)
    session.commit()
    return LoginResult(None)


def _count_attempt(session: Session, key: str, ip: str, now: datetime) -> float:
    """Count one attempt against both limits in one transaction; seconds locked (0: go ahead).

    The transaction starts with a write, so on SQLite it holds the write lock from its first
    statement and concurrent logins take turns.
    """
    limits = {ip: MAX_FAILED_LOGINS, ANY_ADDRESS: MAX_FAILED_LOGINS_PER_ACCOUNT}
    _insert_missing(session, key, list(limits), now)
    mine = (LoginFailure.username == key) & LoginFailure.ip.in_(list(limits))
    # A lockout that is over, or a window that passed without one, starts the count again.
    lock_over = LoginFailure.locked_until.is_not(None) & (LoginFailure.locked_until <= now)
    window_start = now - FAILED_LOGIN_WINDOW
    window_over = LoginFailure.locked_until.is_(None) & (LoginFailure.first_failed_at < window_start)
    session.execute(update(LoginFailure).where(mine, lock_over | window_over)
                    .values(failures=0, first_failed_at=now, locked_until=None))
    counted = 0
    for address, limit in limits.items():
        counted += session.execute(
            update(LoginFailure)
            .where(LoginFailure.username == key, LoginFailure.ip == address, LoginFailure.failures < limit)
            .values(failures=LoginFailure.failures + 1,
                    locked_until=case((LoginFailure.failures + 1 >= limit, now + LOCKOUT), else_=None))
        ).rowcount
    if counted == len(limits):
        session.commit()
        return 0.0
    session.rollback()  # locked at the address or for the account: count nothing
    until = session.scalar(select(func.max(LoginFailure.locked_until)).where(mine))
    session.commit()
    return max((until - now).total_seconds(), 1.0) if until is not None else 1.0


def _insert_missing(session: Session, key: str, addresses: list[str], now: datetime) -> None:
    """Create the counters that do not exist yet (a concurrent insert of the same one is fine)."""
    rows = [dict(username=key, ip=a, failures=0, first_failed_at=now) for a in addresses]
    insert_ignoring = _INSERT_IGNORING.get(session.get_bind().dialect.name)
    if insert_ignoring is not None:
        session.execute(insert_ignoring(LoginFailure).values(rows).on_conflict_do_nothing())
        return
    for row in rows:  # other databases: one transaction per counter
        try:
            session.execute(insert(LoginFailure).values(row))
            session.commit()
        except IntegrityError:
            session.rollback()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
