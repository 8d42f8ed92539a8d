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
from ..store.team import ROLES, LoginFailure, Team, User, utcnow
from .limits import AttemptCounter, Slots

MIN_PASSWORD_LENGTH = 10
MAX_FAILED_LOGINS = 5  # per (username, client address) within FAILED_LOGIN_WINDOW
# Per username over all addresses: once this many attempts came within the window, only
# addresses without a failure for that username may try (one guess each), so guesses spread
# over many addresses still stop, while the real user, at an address of their own, can log in
# (a lock of the whole account would let anyone lock anyone out).
MAX_FAILED_LOGINS_PER_ACCOUNT = 20
FAILED_LOGIN_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
ANY_ADDRESS = "*"  # the ``ip`` of the per-account counter (no client address is "*")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# Attempts per client address, whatever the username, in memory: one address cannot try
# a dictionary of usernames. Generous, since an office may share one address.
MAX_FAILED_LOGINS_PER_ADDRESS = 50
# Keys the in-memory counters keep (least recently used forgotten first): ~200 bytes each,
# so a flood of made-up usernames costs a few MB at most and no database rows.
MAX_COUNTED_KEYS = 10_000
# argon2id at the library's default costs 64 MiB a hash: at most two at once bound the
# memory of any login flood at 128 MiB (it took a server to 1 GB with 40 at once).
ARGON2_SLOTS = 2
# Logins waiting for a slot; more are answered 429 ``too_many_logins`` at once, so waiting
# logins cannot hold every request thread either.
ARGON2_MAX_WAITING = 8
ARGON2_WAIT_S = 10.0  # the longest a login waits for a slot before 429 ``too_many_logins``

# INSERT ... ON CONFLICT DO NOTHING, where the dialect has it.
_INSERT_IGNORING = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the username is unknown, so both cases cost one argon2 hash.
_DUMMY_HASH = _hasher.hash("vmgrade-no-such-user")
_argon2_slots = Slots(ARGON2_SLOTS, ARGON2_MAX_WAITING)

# The most common passwords of 10 or more characters (and the bases that common ones add
# digits to): refused whatever their case or trailing digits and symbols.
COMMON_PASSWORDS = frozenset("""
password qwerty qwertyuiop qwertyuiop123 asdfghjkl asdfghjkl1 zxcvbnm zxcvbnm123 1q2w3e4r5t 1q2w3e4r5t6y
q1w2e3r4t5 q1w2e3r4t5y6 1qaz2wsx3edc qazwsxedc qazwsxedcrfv zaq12wsx abcdefghij abcdefghijk
abcdefg abc123 abcd1234 iloveyou iloveyou123 princess sunshine football baseball basketball
superman batman starwars trustno1 letmein welcome welcome123 monkey dragon master shadow
michael jennifer jordan23 freedom whatever qwerty123 password1 passw0rd p@ssw0rd p@ssword
changeme changeme123 administrator admin admin123 administrator1 root toor login guest
secret secret123 default default123 test test123 testing testtest qwertzuiop
1234567890 0987654321 12345678910 1234512345 1111111111 0000000000 123123123123 123456789a
a123456789 987654321 123qweasdzxc qweasdzxc 1qazxsw2 q2w3e4r5 football1 computer internet
samsung chocolate butterfly pokemon liverpool chelsea arsenal manchester everton soccer hockey
spiderman harrypotter blink182 mustang maverick charlie jessica ashley matthew daniel
thomas summer winter spring autumn hello hello123 helloworld loveme lovely flower
vmgrade voicemail salesforce company letmein123 mypassword yourpassword newpassword
correcthorsebatterystaple
""".split())
class AccountError(VmgradeError):
    """A bad account request (duplicate or unknown username, weak password, unknown role)."""

    code = "account_error"


class LoginCounters:
    """The in-memory login counts of one server (each app has its own).

    Attributes
    ----------
    unknown : AttemptCounter
        Unknown usernames per (username, address), with the same limit as known ones (so a
        lockout does not tell which usernames exist); never in the database.
    addresses : AttemptCounter
        Attempts per client address, whatever the username.
    """

    def __init__(self, max_keys: int = MAX_COUNTED_KEYS):
        window_s, lockout_s = FAILED_LOGIN_WINDOW.total_seconds(), LOCKOUT.total_seconds()
        self.unknown = AttemptCounter(MAX_FAILED_LOGINS, window_s, lockout_s, max_keys)
        self.addresses = AttemptCounter(MAX_FAILED_LOGINS_PER_ADDRESS, window_s, lockout_s, max_keys)


_counters = LoginCounters()  # for callers that pass none


@dataclass(frozen=True)
class LoginResult:
    """What :func:`authenticate` decided.

    Attributes
    ----------
    user : User or None
        The user, when the password was right (and the account active).
    locked_for_s : float
        > 0: refused without checking the password, locked for this many more seconds.
    busy : bool
        Refused without checking or counting anything: too many logins are being checked at once.
    """

    user: User | None
    locked_for_s: float = 0.0
    busy: bool = False


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
    check_password(password, username)
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
        No such user, or the password fails :func:`check_password`.
    """
    user = find_user(session, username)
    check_password(password, user.username)
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
                 now: datetime | None = None, counters: LoginCounters | None = None) -> LoginResult:
    """Check a login within the failed-login limits; commits the counts.

    At most :data:`ARGON2_SLOTS` passwords are checked at once (each argon2 check holds
    64 MiB); a login that finds no slot within :data:`ARGON2_WAIT_S`, or finds
    :data:`ARGON2_MAX_WAITING` others waiting, is refused with ``busy`` and counts nothing.

    Each attempt is counted *before* its password is checked. A known username is counted
    in the database per (username, ip) and per username, by an atomic ``UPDATE ... WHERE
    failures < limit``, so parallel guesses get at most the limit of checks between them; a
    successful login takes its attempt back. After ``MAX_FAILED_LOGINS`` attempts within
    ``FAILED_LOGIN_WINDOW`` from one address the username is locked at that address for
    ``LOCKOUT``, even for the right password. After ``MAX_FAILED_LOGINS_PER_ACCOUNT`` from all
    addresses together, for ``LOCKOUT`` only addresses with no failure for the username may
    try (and one failure locks them too). An unknown username costs the same argon2 check
    (against a fixed hash) and is counted in memory (:data:`MAX_COUNTED_KEYS` keys at most),
    never in the database. Every address is limited to ``MAX_FAILED_LOGINS_PER_ADDRESS``
    attempts in the window, whatever the usernames.

    Parameters
    ----------
    session : Session
    username, password : str
    ip : str
        The client's address.
    now : datetime, optional
        Naive UTC (tests move it); default now.
    counters : LoginCounters, optional
        The server's in-memory counts; default one shared by callers that pass none.
    """
    counters = counters or _counters
    now = now or utcnow()
    key = (username or "").lower()[:64]
    ip = (ip or "unknown")[:64]
    if ip == ANY_ADDRESS:
        ip = "unknown"
    if not _argon2_slots.acquire(ARGON2_WAIT_S):
        return LoginResult(None, busy=True)
    try:
        locked_for_s = counters.addresses.count(ip)
        if locked_for_s:
            return LoginResult(None, locked_for_s)
        user = session.scalar(select(User).where(func.lower(User.username) == key))
        if user is None:
            session.rollback()  # hands the connection back while the hash is checked
            locked_for_s = counters.unknown.count((key, ip))
            if locked_for_s:
                return LoginResult(None, locked_for_s)
            _verify(_DUMMY_HASH, password or "")
            return LoginResult(None)
        locked_for_s = _count_attempt(session, key, ip, now)
        if locked_for_s:
            return LoginResult(None, locked_for_s)
        if not (_verify(user.password_hash, password or "") and user.active):
            return LoginResult(None)
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        _forget_attempt(session, key, ip)
        counters.addresses.forgive(ip)
        return LoginResult(user)
    finally:
        _argon2_slots.release()


def _forget_attempt(session: Session, key: str, ip: str) -> None:
    """A successful login: the address's count is forgotten, the account's gets this attempt back. Commits."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == key, LoginFailure.ip == ip))
    limit = MAX_FAILED_LOGINS_PER_ACCOUNT
    session.execute(
        update(LoginFailure)
        .where(LoginFailure.username == key, LoginFailure.ip == ANY_ADDRESS, LoginFailure.failures > 0)
        .values(failures=LoginFailure.failures - 1,
                locked_until=case((LoginFailure.failures - 1 >= limit, LoginFailure.locked_until),
                                  else_=None)))
    session.commit()


def _count_attempt(session: Session, key: str, ip: str, now: datetime) -> float:
    """Count one attempt of a known username in one transaction; seconds locked (0: go ahead).

    The transaction starts with a write (forgetting counts that are over, of every user, so
    the table holds only the last window's), so on SQLite it holds the write lock from its
    first statement and concurrent logins take turns.
    """
    window_start = now - FAILED_LOGIN_WINDOW
    session.execute(delete(LoginFailure).where(
        (LoginFailure.locked_until.is_not(None) & (LoginFailure.locked_until <= now))
        | (LoginFailure.locked_until.is_(None) & (LoginFailure.first_failed_at < window_start))))
    _insert_missing(session, key, [ip, ANY_ADDRESS], now)
    account_until = session.scalar(select(LoginFailure.locked_until).where(
        LoginFailure.username == key, LoginFailure.ip == ANY_ADDRESS))
    account_locked = account_until is not None and account_until > now
    may_try = LoginFailure.failures < MAX_FAILED_LOGINS
    if account_locked:
        may_try = may_try & (LoginFailure.failures == 0)  # the account is guarded: clean addresses only
    counted = session.execute(
        update(LoginFailure)
        .where(LoginFailure.username == key, LoginFailure.ip == ip, may_try)
        .values(failures=LoginFailure.failures + 1,
                locked_until=case((LoginFailure.failures + 1 >= MAX_FAILED_LOGINS, now + LOCKOUT),
                                  else_=None))
    ).rowcount
    if counted != 1:
        until = session.scalar(select(LoginFailure.locked_until).where(
            LoginFailure.username == key, LoginFailure.ip == ip))
        session.rollback()  # locked at the address, or the account is guarded: count nothing
        if account_locked:
            until = max(until or account_until, account_until)
        return max((until - now).total_seconds(), 1.0) if until is not None else 1.0
    limit = MAX_FAILED_LOGINS_PER_ACCOUNT
    session.execute(
        update(LoginFailure)
        .where(LoginFailure.username == key, LoginFailure.ip == ANY_ADDRESS, LoginFailure.failures < limit)
        .values(failures=LoginFailure.failures + 1,
                locked_until=case((LoginFailure.failures + 1 >= limit, now + LOCKOUT), else_=None)))
    session.commit()
    return 0.0


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


def check_password(password: str, username: str = "") -> None:
    """Refuse a weak password: too short, containing the username, or a common one.

    Raises
    ------
    AccountError
        Saying why: under :data:`MIN_PASSWORD_LENGTH` characters, contains the username,
        one character repeated, or in :data:`COMMON_PASSWORDS` (whatever its case, spaces,
        and the digits or symbols added at its end).
    """
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise AccountError("password contains the username: choose one that does not")
    if len(set(lowered)) == 1:
        raise AccountError("password is one character repeated: choose a less guessable one")
    squeezed = lowered.replace(" ", "")
    if squeezed in COMMON_PASSWORDS or squeezed.rstrip("0123456789!@#$%^&*?.-_+=~") in COMMON_PASSWORDS:
        raise AccountError("password is too common (it is on the list of the most used ones): "
                           "choose a less guessable one")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
