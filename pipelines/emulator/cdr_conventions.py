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
* A queue call writes one leg per agent rung, ``user_id`` the agent, in rounds of the queue's
  ``ring_time``: a ring-all queue rings its available agents at once (the legs of a round start
  together), any other strategy one agent per round, in turn. While nobody answers, a new round
  starts when the last one's ``ring_time`` ran out, so a caller who waits 70 s in a queue with a
  20 s ring time writes four rounds of legs, the first leg starting when the caller entered the
  queue and the answer (or the caller hanging up) in the last round. The answering agent's leg
  is ``I`` / ``CONNECTED``; every other leg is ``M`` / ``NO ANSWER``: with cause
  :attr:`Causes.answered_elsewhere` when it was still ringing as a colleague answered (the other
  legs of the answering round of a ring-all queue), and a no-answer cause otherwise (rang, not
  answered, nobody else answered: RONA, "ring no answer").
* A transferred call writes two ``I`` legs: the first agent's (a short talk), and the colleague's,
  which starts ringing when the first leg hangs up (``info`` names who transferred).
* A forwarded call (the user's follow-me to a mobile) writes two legs that are up at once: the
  inbound leg (``I``, or ``M`` when the mobile did not answer, ``context`` :attr:`Contexts.
  from_outside`) to the user, and the outbound leg (``O``, ``context`` :attr:`Contexts.forward`)
  from the user to their mobile, which starts as the PBX dials out (at once, or after the desk
  phone rang a while), is answered at the same instant as the inbound leg and ends with it. The
  outbound leg is rated and charged as any outbound call to that mobile (its own ``destination``,
  ``rate`` and ``charge``); the inbound leg has no charge. Both legs' ``billsec`` is the
  conversation, so the conversation's time appears twice.
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

    Which causes appear, and with which dispositions, is the emulator's choice: no document says
    what VoIPstudio writes. The shares are of the legs with that outcome.

    Attributes:
        normal_clearing: 16, an answered call hung up normally.
        normal_unspecified: 31, the cause of a share :attr:`unspecified_share` of answered calls.
        no_answer: the causes of ``NO ANSWER`` legs with their shares: 19 no answer from user
            (alerted: it rang), 18 no user responding (the phone did not react).
        busy: 17, user busy (every ``BUSY`` leg).
        failed: the causes of ``FAILED`` legs with their shares: 21 call rejected (a terminal
            rejection: the called party's phone or network declined it; ITU-T E.425 counts it as
            network-effective), 1 unallocated number, 28 invalid number format, and the network
            failures 27 destination out of order, 34 no circuit available, 38 network out of
            order, 41 temporary failure.
        answered_elsewhere: 26, non-selected user clearing: an agent's leg of a queue call that
            was still ringing when a colleague answered.
    """

    normal_clearing: str = "16"
    normal_unspecified: str = "31"
    unspecified_share: float = 0.03
    no_answer: dict[str, float] = field(default_factory=lambda: {"19": 0.85, "18": 0.15})
    busy: str = "17"
    failed: dict[str, float] = field(
        default_factory=lambda: {
            "21": 0.42,
            "1": 0.14,
            "28": 0.04,
            "27": 0.1,
            "34": 0.14,
            "38": 0.1,
            "41": 0.06,
        }
    )
    answered_elsewhere: str = "26"


@dataclass(frozen=True)
class Contexts:
    """The ``context`` (dialplan context) of each kind of leg [guess]."""

    from_outside: str = "from-pstn"  # an inbound call straight to a user
    queue: str = "from-queue"  # every leg of a call that came through a queue
    internal: str = "from-internal"  # outbound and internal calls
    transfer: str = "from-internal-xfer"  # the second leg of a transferred call
    forward: str = "from-internal-fwd"  # the outbound leg of a call forwarded to a mobile


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
