"""How the emulator writes a call as CDRs: call types, dispositions, hang-up causes, contexts,
how a queue is named, and how the legs of one call relate.

Only the field names and types of a CDR, the type codes ``I``/``O``/``M`` and the disposition
``CONNECTED`` are known from clients of the live API [code]. Everything else here is the
emulator's own invention [guess]: no document says how a CDR names the queue that handled it,
how ringing shows in the legs of a queue call, or which Q.850 causes appear in ``t_cause``. The
generator (``generator.py``) takes every such value from this module, so that a fact learnt from
a real account changes this one file. ``docs/emulator.md`` ("CDR conventions") lists them with
their confidence.

The leg rules the generator follows (``generator._expand``) [guess]:

* A call is one or more legs (CDR rows) sharing ``call_id``; the first leg has no
  ``parent_live_id``, later legs carry the first leg's ``live_id``.
* A leg's ``duration`` is its ringing plus its talk; ``billsec`` is the talk. An unanswered leg
  has ``billsec`` 0 and ``duration`` = how long it rang.
* A queue call writes one leg per agent rung, ``user_id`` the agent. A ring-all queue rings its
  agents at once (all legs start together); any other strategy rings them in turn, each leg
  starting when the previous agent's ``ring_time`` ran out. The answering agent's leg is
  ``I`` / ``CONNECTED``; the others are ``M`` / ``NO ANSWER``, with cause
  :attr:`Causes.answered_elsewhere` when a colleague answered and :attr:`Causes.no_answer` when
  nobody did.
* A transferred call writes two ``I`` legs: the first agent's (a short talk), and the colleague's,
  which starts ringing when the first leg hangs up (``info`` names who transferred).
* An internal call writes one leg, the caller's, of type ``O`` (the callee has no CDR of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallTypes:
    """The ``type`` of a leg [code]."""

    inbound: str = "I"
    outbound: str = "O"
    missed: str = "M"


@dataclass(frozen=True)
class Dispositions:
    """The ``disposition`` of a leg: ``CONNECTED`` is seen [code], the rest [guess]."""

    connected: str = "CONNECTED"
    no_answer: str = "NO ANSWER"
    busy: str = "BUSY"
    failed: str = "FAILED"


@dataclass(frozen=True)
class Causes:
    """The ``t_cause`` of a leg, as ITU-T Q.850 cause codes in text [guess].

    Attributes:
        normal_clearing: 16, an answered call hung up normally.
        normal_unspecified: 31, the cause of a share :attr:`unspecified_share` of answered calls.
        no_answer: 19, rang until the caller gave up or the ring timed out.
        busy: 17, user busy.
        failed: the causes of ``FAILED`` legs with their shares: 21 call rejected, 34 no circuit
            available, 1 unallocated number, 38 network out of order.
        answered_elsewhere: 26, non-selected user clearing: an agent's leg of a queue call that
            a colleague answered.
    """

    normal_clearing: str = "16"
    normal_unspecified: str = "31"
    unspecified_share: float = 0.03
    no_answer: str = "19"
    busy: str = "17"
    failed: dict[str, float] = field(
        default_factory=lambda: {"21": 0.35, "34": 0.3, "1": 0.25, "38": 0.1}
    )
    answered_elsewhere: str = "26"


@dataclass(frozen=True)
class Contexts:
    """The ``context`` (dialplan context) of each kind of leg [guess]."""

    from_outside: str = "from-pstn"  # an inbound call straight to a user
    queue: str = "from-queue"  # every leg of a call that came through a queue
    internal: str = "from-internal"  # outbound and internal calls
    transfer: str = "from-internal-xfer"  # the second leg of a transferred call


@dataclass(frozen=True)
class Destinations:
    """What ``destination`` holds, by kind of leg [guess].

    An outbound leg: the rated destination of the number called (``Spain Mobile (Local)``,
    the same text as ``dst_name``). A queue leg: the queue's ``name`` (that is how a CDR names
    the queue that handled it). An internal call: :attr:`internal`. An inbound call straight to
    a user, or transferred: null.
    """

    internal: str = "Internal"


# The second leg of a transferred call says who transferred it, in ``info`` [guess].
TRANSFER_INFO = "Transferred from {ext}"

CALL_TYPES = CallTypes()
DISPOSITIONS = Dispositions()
CAUSES = Causes()
CONTEXTS = Contexts()
DESTINATIONS = Destinations()
