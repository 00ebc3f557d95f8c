"""What a SIP final response to our INVITE means for the call (pure).

Telephony networks answer an unsuccessful call attempt with a status code; campaigns care
about fewer distinctions: is somebody busy (try again soon), did nobody pick up, was the call
refused by the person, is the number wrong (stop trying), or did the network fail us.
"""

from __future__ import annotations

from core.vocabulary import CallOutcome

BUSY = CallOutcome.BUSY
DECLINED = CallOutcome.DECLINED
NO_ANSWER = CallOutcome.NO_ANSWER
INVALID_NUMBER = CallOutcome.INVALID_NUMBER
UNREACHABLE = CallOutcome.UNREACHABLE
FAILED = CallOutcome.FAILED

_BY_CODE: dict[int, CallOutcome] = {
    486: BUSY,  # Busy Here
    600: BUSY,  # Busy Everywhere
    603: DECLINED,  # Decline: the callee rejected the call
    607: DECLINED,  # Unwanted
    480: NO_ANSWER,  # Temporarily Unavailable (phone off, no answer at the far end)
    408: NO_ANSWER,  # Request Timeout: nobody answered in time
    487: NO_ANSWER,  # Request Terminated: we cancelled after ringing too long
    404: INVALID_NUMBER,  # Not Found
    410: INVALID_NUMBER,  # Gone
    484: INVALID_NUMBER,  # Address Incomplete
    485: INVALID_NUMBER,  # Ambiguous
    604: INVALID_NUMBER,  # Does Not Exist Anywhere
    401: FAILED,  # our credentials were refused: a configuration error, not the customer
    403: FAILED,
    407: FAILED,
    488: FAILED,  # Not Acceptable Here: no common codec
    606: FAILED,
}


def failure_status(code: int) -> CallOutcome:
    """The call outcome for a final non-2xx response ``code`` to the INVITE."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if code == 0 or 500 <= code < 600:
        return UNREACHABLE  # no response, or the trunk or carrier failed: try again later
    return FAILED


OUTCOMES = frozenset({BUSY, DECLINED, NO_ANSWER, INVALID_NUMBER, UNREACHABLE, FAILED})
