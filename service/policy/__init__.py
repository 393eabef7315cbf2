"""The pure decision: what one pass should do to one target, and why.

``plan(now, credentials, holdings, policy, flags, intents)`` reads nothing and writes nothing; time is an
argument. It imports no adapter and no SDK. Its messages name credentials by key id alone: Graph's hint
(a secret's first three characters) reaches `status` only, never `plan` output or a log line. The rules
are DESIGN.md's "rotation protocol", step 2, each a small named function (cert-manager's ``policies.Chain``):

- facts.py: what the rules read, worked out once (:class:`Facts`), and the small answers they share
  (renewal time, newest, in use, whose a credential is);
- rotation.py: whether to create a credential and why, a chain the first answer of which decides;
- blocking.py: when that rotation must wait (another state store competing, no room under the cap);
- retirement.py: which credentials may go (orphan, superseded, revoked);
- evidence.py: with ``retire_on: usage``, whether Entra's sign-in report shows the consumers switched;
- plan.py: the answers put together, in the order apply must take them;
- window.py: what of them waits for a maintenance window, and when safety cannot wait;
- notes.py: what `plan` and `status` say that is no action;
- standings.py: what is becoming of each credential, for `status`, by the same rules;
- history.py: whether a plan needs what the sinks ever recorded, or only what they hold now.
"""

from service.policy.facts import (
    Facts,
    claims,
    foreign,
    in_use,
    lifetime_under,
    may_be_held,
    newest,
    renewal_time,
)
from service.policy.history import needs_history
from service.policy.notes import notes
from service.policy.plan import plan
from service.policy.retirement import lagging_consumers
from service.policy.standings import standings

__all__ = [
    "Facts",
    "claims",
    "foreign",
    "in_use",
    "lagging_consumers",
    "lifetime_under",
    "may_be_held",
    "needs_history",
    "newest",
    "notes",
    "plan",
    "renewal_time",
    "standings",
]
