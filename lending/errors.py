"""The lending package's errors::

    LendingError (ValueError)
     ├── SignatureError       a request from a lending system is unsigned, malformed, forged,
     │                        stale or replayed (``code`` says which)
     ├── LoanEventRefused     loan outcomes that cannot be recorded (an unknown customer, out
     │                        of order, conflicting with what is recorded); nothing was changed
     ├── LoanFileError        a daily loan file that cannot be read at all (encoding, header)
     ├── SettlementsRefused   settlement records that cannot be stored (a bad row, an unknown
     │                        customer, a ref stored with other figures); nothing was changed
     ├── SettlementFileError  a settlement file that cannot be read at all (encoding, header)
     ├── ApplicationInvalid   a partner's application that cannot be read: ``problems`` name
     │                        each bad field (``applicant.phone``); nothing was changed
     └── ApplicationRefused   a well-formed application offercall will not take (an unknown
                              customer, the same partner id resubmitted with other data, a
                              campaign not the partner's); ``status`` and ``code`` say which

    PartnerConfigError (core.settings.SettingsError)
                              the partners' file cannot be used (fails at start-up)

    AlertError (Exception)    a staff action on a post-loan alert that cannot be done, with its
                              HTTP status (400, 403, 404, 409, 422)
"""

from __future__ import annotations

from collections.abc import Sequence

from core.settings import SettingsError


class LendingError(ValueError):
    """Something a lending system sent that offercall refuses."""


class SignatureError(LendingError):
    """A request whose signature does not stand: ``code`` is ``unsigned``, ``malformed``,
    ``bad_signature``, ``stale`` or ``replayed``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LoanEventRefused(LendingError):
    """Loan events refused, each with why: ``problems`` are (where, reason) pairs, ``where``
    the event's place in the request (``events[2]``) or file (``line 7``)."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{where}: {reason}" for where, reason in self.problems))


class LoanFileError(LendingError):
    """A loan file that cannot be read at all; nothing of it was applied."""


class SettlementsRefused(LendingError):
    """Settlement records refused, each with why: ``problems`` are (where, reason) pairs,
    ``where`` the record's place in the file (``line 7``) or request (``settlements[2]``).
    Nothing of the file or request was stored."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{where}: {reason}" for where, reason in self.problems))


class SettlementFileError(LendingError):
    """A settlement file that cannot be read at all; nothing of it was stored."""


class AlertError(Exception):
    """A post-loan alert action that cannot be done, with the HTTP status that says why (400 a
    bad value, 403 not this person's, 404 no such alert, 409 already acknowledged, 422 not an
    account it can be given to)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ApplicationInvalid(LendingError):
    """A partner's application that cannot be read: ``problems`` are (field, reason) pairs, the
    field a dotted path into the JSON body (``organisation.region``, ``settlement[2].month``)."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{where}: {reason}" for where, reason in self.problems))


class ApplicationRefused(LendingError):
    """An application offercall will not take as sent: ``status`` the HTTP status (409 the
    partner id was used for other data, 422 an unknown customer or one that does not match),
    ``code`` a stable word for the partner's software."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class PartnerConfigError(SettingsError):
    """The partners' file (``OFFERCALL_PARTNERS``) cannot be used; offercall does not start."""
