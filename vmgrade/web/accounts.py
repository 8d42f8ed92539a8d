"""Accounts, passwords (argon2) and the failed-login limit.

Pure library functions over a SQLAlchemy session: the CLI (`vmgrade users`)
and the web app share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import VmgradeError
from .tables import ROLES, LoginFailure, Team, User, utcnow

MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5  # per (username, client address) within FAILED_LOGIN_WINDOW
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the username is unknown, so both cases cost one argon2 hash.
_DUMMY_HASH = _hasher.hash("vmgrade-no-such-user")


class AccountError(VmgradeError):
    """A bad account request (duplicate username, weak password, unknown role)."""

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
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
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


def authenticate(session: Session, username: str, password: str, ip: str, *,
                 now: datetime | None = None) -> LoginResult:
    """Check a login, counting failures per (username, ip); commits the count.

    After ``MAX_FAILED_LOGINS`` failures within ``FAILED_LOGIN_WINDOW`` the pair
    is locked for ``LOCKOUT``: even the right password is refused until then.
    """
    now = now or utcnow()
    key = (username or "").lower()[:64]
    ip = (ip or "unknown")[:64]
    row = session.scalar(select(LoginFailure).where(LoginFailure.username == key, LoginFailure.ip == ip))
    if row is not None and row.locked_until is not None and row.locked_until > now:
        return LoginResult(None, (row.locked_until - now).total_seconds())

    user = session.scalar(select(User).where(func.lower(User.username) == key))
    ok = _verify(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is not None and ok and user.active:
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        if row is not None:
            session.delete(row)
        session.commit()
        return LoginResult(user)

    if row is None:
        row = LoginFailure(username=key, ip=ip, failures=0, first_failed_at=now)
        session.add(row)
    elif row.first_failed_at < now - FAILED_LOGIN_WINDOW or row.locked_until is not None:
        row.failures, row.first_failed_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= MAX_FAILED_LOGINS:
        row.locked_until = now + LOCKOUT
    try:
        session.commit()
    except IntegrityError:  # a concurrent first failure for the same pair: count it there
        session.rollback()
        return authenticate_failure_retry(session, key, ip, now)
    return LoginResult(None)


def authenticate_failure_retry(session: Session, key: str, ip: str, now: datetime) -> LoginResult:
    row = session.scalar(select(LoginFailure).where(LoginFailure.username == key, LoginFailure.ip == ip))
    if row is not None:
        row.failures += 1
        if row.failures >= MAX_FAILED_LOGINS:
            row.locked_until = now + LOCKOUT
        session.commit()
    return LoginResult(None)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
