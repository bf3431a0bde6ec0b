"""The checkout: asking the server to lay the files out under the checkout path.

The name comes from the template; a name already taken gets a random suffix (bounded
tries). A server that lost a blob between the last requirements call and this request
answers "unknown files": everything missing is sent again, once. Once the request is on
its way, cancel leaves it alone (``CancelState.creating``): a cut-off answer would leave
a checkout nobody knows about.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from ..errors import Cancelled, CheckoutExists, CheckoutNamesTaken, MissingFilesAtCheckout
from ..progress import Phase, ProgressTracker
from ..shaman.client import FileSpec, ShamanClient
from . import checkout_name

log = logging.getLogger(__name__)

CANCELLED_MESSAGE = ("The submission was cancelled; files already uploaded stay on the "
                     "server and will be skipped next time.")


class CancelState:
    """The cancel flag of one submission, and whether the checkout request is out (after
    which cancelling no longer cuts connections)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.lock = threading.Lock()
        self.create_sent = False

    def raise_if_cancelled(self) -> None:
        if self.event.is_set():
            raise Cancelled(CANCELLED_MESSAGE)

    @contextmanager
    def creating(self) -> Iterator[None]:
        """The checkout request is being sent: from the last cancel check on, a cancel
        lets it finish; if it fails, cancel cuts connections again."""
        with self.lock:
            self.raise_if_cancelled()
            self.create_sent = True
        ok = False
        try:
            yield
            ok = True
        finally:
            if not ok:
                with self.lock:
                    self.create_sent = False


def create_checkout(client: ShamanClient, specs: Callable[[], list[FileSpec]], *,
                    template: str, blend_name: str, now: datetime,
                    tracker: ProgressTracker, cancel: CancelState,
                    resend_missing: Callable[[], None], max_attempts: int) -> str:
    """Create the checkout of the files ``specs()`` lists (asked again after a resend);
    returns the path the SERVER chose. ``now`` is when the submission started: a render
    job checked before collecting was given the same name."""
    tracker.set_phase(Phase.CHECKING_OUT)
    base = checkout_name.render_checkout_name(template, blend_name=blend_name, now=now)
    path = base
    resent = False
    for _attempt in range(max_attempts):
        try:
            with cancel.creating():
                return client.create_checkout(specs(), path)
        except CheckoutExists:
            suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits)
                             for _ in range(4))
            log.info("checkout %s exists; trying %s-%s", path, base, suffix)
            path = f"{base}-{suffix}"
        except MissingFilesAtCheckout:
            if resent:
                raise
            resent = True
            log.warning("the server lost files before the checkout; sending them again")
            resend_missing()
            tracker.set_phase(Phase.CHECKING_OUT)
    raise CheckoutNamesTaken(
        f"The server at {client.base_url} refused {max_attempts} checkout names starting "
        f"with {base!r} as taken; choose another checkout path template.")
