"""The uploads of one submission: what is sent, and what each answer means for the file.

Each upload is one content (SHA-256, size) and the local files that hold it. The ordinary
threads send through the Shaman client (``requests``) with its retries; the client's
pipelined lanes, where it has them, take small first attempts. After an answer:
- stored (200/204): done, unless the file changed on disk while it was sent;
- 425 (someone else is uploading it): back-off, then left for the next requirements round;
- 208, or a connection dropped mid-body: not proof either way, so the file's status is
  asked, and it is sent again unless stored;
- 417, or the file changed: hashed again once and sent with its new checksum.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import (
    Cancelled,
    ChecksumMismatch,
    ConnectFailed,
    ExchangeFailed,
    LocalFileChanged,
    RequestNotRead,
    ShamanError,
    TransportFailure,
    UploadKeepsDropping,
    UploadNeverSettles,
    UploadReset,
)
from ..progress import ProgressTracker
from ..shaman.client import Answer, PipelinedConnection, ShamanClient, UploadResult
from . import checksums
from .checksums import ChecksumCache, FileStat
from .contents import Contents, Key, UploadLedger
from .options import SubmitOptions
from .upload_pool import AheadLimit, UploadPool

log = logging.getLogger(__name__)

ALREADY_KNOWN = "the server already knew it"


@dataclass(eq=False, slots=True)
class UploadItem:
    """One content to upload, and what happened to it so far."""

    sha: str
    size: int
    sources: list[str]  # the files holding it (text: one list per content to send)
    name: str  # a checkout path holding it: the server's log and our messages show it
    can_defer: bool = True
    defers: int = 0
    resets: int = 0
    unsettled: int = 0  # 208 answers after which the status said "not stored"
    first_attempt: Answer | TransportFailure | None = field(default=None, repr=False)
    """A lane's attempt that did not store it: the ordinary upload takes it as its own
    first attempt, so retries, back-offs and messages are exactly an upload's."""
    ticket: int = -1  # the lane's ticket for the answer

    @property
    def key(self) -> Key:
        return (self.sha, self.size)


class _LaneAdapter:
    """A client's pipelined connection as a lane of the upload pool."""

    def __init__(self, connection: PipelinedConnection, client: ShamanClient,
                 uploads: Uploads) -> None:
        self._conn = connection
        self._client = client
        self._uploads = uploads

    def accepts(self, item: UploadItem) -> bool:
        return item.defers == 0 and item.resets == 0 and self._conn.fits(item.size)

    def write(self, item: UploadItem) -> int:
        source = item.sources[0]
        request = self._client.upload_request(item.sha, item.size, source,
                                              original_filename=item.name,
                                              can_defer=item.can_defer)
        try:
            item.ticket = self._conn.write(request, source, item.size)
        except ConnectFailed as exc:
            item.first_attempt = exc  # no second connect wait for the ordinary upload
            raise
        return item.size

    def read(self, item: UploadItem) -> bool:
        try:
            answer = self._conn.read(item.ticket)
        except RequestNotRead:
            # Behind an answer that closed the connection: the server never read it, so
            # it is simply sent again (the lane's newer requests are on a new connection).
            return False
        if answer.status in (200, 204):
            self._uploads.stored_by_lane(item)
            return True
        item.first_attempt = answer
        return False

    def broken(self, items: Sequence[UploadItem], error: BaseException) -> None:
        failure = (error if isinstance(error, TransportFailure)
                   else ExchangeFailed(f"the connection failed ({error})"))
        for item in items:
            item.first_attempt = failure

    def reset(self) -> None:
        self._conn.reset()


class Uploads:
    """The upload pool of one submission and the handling of every answer."""

    def __init__(self, client: ShamanClient, contents: Contents, ledger: UploadLedger,
                 tracker: ProgressTracker, cache: ChecksumCache, options: SubmitOptions,
                 cancel: threading.Event) -> None:
        self._client = client
        self._contents = contents
        self._ledger = ledger
        self._tracker = tracker
        self._cache = cache
        self._options = options
        self._cancel = cancel
        self._lock = threading.Lock()
        self._rehashed: set[str] = set()
        self._unsettled = 0  # of the whole submission
        tuning = options.tuning
        lanes = [_LaneAdapter(conn, client, self) for conn in client.lanes()]
        self._pool: UploadPool[UploadItem] = UploadPool(
            options.jobs, self._upload, name="shaman-upload", lanes=lanes,
            ahead=AheadLimit(tuning.lane_ahead_requests, tuning.lane_ahead_bytes))

    # -- the caller's side ----------------------------------------------------------------

    def put(self, item: UploadItem, delay_s: float = 0.0) -> None:
        self._pool.put(item, delay_s=delay_s)

    def backlog(self) -> int:
        return self._pool.backlog()

    def raise_if_failed(self) -> None:
        self._pool.raise_if_failed()

    def wait(self) -> None:
        """Until everything put so far is stored or left for the next round."""
        self._pool.wait_idle(should_stop=self._cancel.is_set)
        self._raise_if_cancelled()

    def stop(self) -> None:
        self._pool.stop()

    def join(self, timeout: float) -> None:
        self._pool.join(timeout)

    # -- one upload, on a pool thread -----------------------------------------------------

    def stored_by_lane(self, item: UploadItem) -> None:
        self._tracker.uploaded_bytes(item.size, item.name)
        self._finish(item.key, item.name, sent_by_us=True)

    def _upload(self, item: UploadItem) -> None:
        self._raise_if_cancelled()
        source = item.sources[0]
        first, item.first_attempt = item.first_attempt, None
        sent = 0
        if first is not None and not isinstance(first, ConnectFailed):
            sent = item.size  # the lane wrote the body: count it until the answer says
            self._tracker.uploaded_bytes(item.size, item.name)

        def on_bytes(n: int) -> None:
            nonlocal sent
            sent += n
            self._tracker.uploaded_bytes(n, item.name)

        try:
            outcome = self._client.upload(
                item.sha, item.size, source, original_filename=item.name,
                can_defer=item.can_defer, on_bytes=on_bytes, cancel=self._cancel,
                first_attempt=first)
        except UploadReset:
            self._tracker.uploaded_bytes(-sent)
            self._raise_if_cancelled()
            item.resets += 1
            self._after_unclear(item, "the connection dropped")
            return
        except (ChecksumMismatch, LocalFileChanged) as exc:
            self._tracker.uploaded_bytes(-sent)
            self._after_mismatch(item, exc)
            return
        except ShamanError as exc:
            raise self._naming_the_artists_file(exc, source) from exc
        if outcome is not UploadResult.STORED:
            self._tracker.uploaded_bytes(-sent)
        self._after_answer(item, outcome, sent)

    def _after_answer(self, item: UploadItem, outcome: UploadResult, sent: int) -> None:
        if outcome is UploadResult.STORED:
            if self._changed_while_sent(item.key, item.sources[0]):
                self._tracker.uploaded_bytes(-sent)
                self._after_mismatch(item, LocalFileChanged(
                    f"{item.sources[0]} changed while it was being uploaded",
                    path=str(item.sources[0])))
                return
            self._finish(item.key, item.name, sent_by_us=True)
        elif outcome is UploadResult.DEFERRED:
            item.defers += 1
            delays = self._options.tuning.defer_delays_s
            if item.defers > len(delays):
                log.info("%s: still uploaded by someone else; left for the next round",
                         item.name)
                return
            self._pool.put(item, delay_s=delays[item.defers - 1])
        else:  # ALREADY_KNOWN: not proof, ask
            self._after_unclear(item, ALREADY_KNOWN)

    def _naming_the_artists_file(self, exc: ShamanError, source: str) -> ShamanError:
        """A rewritten copy is gone by the time anyone reads the error: name the
        artist's file instead."""
        original = self._contents.original_of(source)
        if original == source or not exc.args:
            return exc
        return exc.reworded(str(exc).replace(str(source), f"{original} (its rewritten copy)"))

    def _changed_while_sent(self, key: Key, source: str) -> bool:
        """Bytes appended during an upload leave the sent ones valid (no 417); only the
        file's size and mtime tell that the checkout would hold an old version."""
        entries = [e for e in self._contents.entries_of(source)
                   if e.spec is not None and (e.spec.sha, e.spec.size) == key]
        try:
            now = FileStat.of(source)
        except LocalFileChanged:
            return False  # deleted since: there is nothing newer to send
        return any(entry.stat != now for entry in entries)

    def _after_unclear(self, item: UploadItem, why: str) -> None:
        """After a reset or a 208: stored means done; otherwise send it again later."""
        status = self._client.file_status(item.sha, item.size)
        log.debug("%s: %s; status now %s", item.name, why, status)
        if status == "stored":
            self._finish(item.key, item.name, sent_by_us=False)
            return
        if why == ALREADY_KNOWN:
            self._count_unsettled(item, status)
        if item.resets > self._options.tuning.max_resets_per_file:
            raise UploadKeepsDropping(
                f"Uploading {item.sources[0]} to {self._options.server_url} was cut off "
                f"{item.resets} times; check the network and the Manager's log.",
                url=self._options.server_url, path=str(item.sources[0]))
        self._pool.put(item, delay_s=0.05 if status == "uploading" else 0.0)

    def _count_unsettled(self, item: UploadItem, status: str) -> None:
        """A 208 ("already stored") the status then denied: bounded per file and per
        submission, or a server that says both forever is sent the file forever."""
        tuning = self._options.tuning
        item.unsettled += 1
        with self._lock:
            self._unsettled += 1
            total = self._unsettled
        if item.unsettled <= tuning.max_unsettled_per_file and total <= tuning.max_unsettled:
            return
        url = self._options.server_url
        raise UploadNeverSettles(
            f"The server at {url} answered {item.unsettled} upload(s) of {item.sources[0]} "
            f"with 208 (already stored) but then reported the file as {status!r} "
            f"({total} such answers in this submission); it contradicts itself, so the "
            "upload was not repeated. Check the Manager's log and its storage.",
            url=url, path=str(item.sources[0]))

    def _after_mismatch(self, item: UploadItem, exc: ShamanError) -> None:
        """417 or a size change on disk: hash that file again, once, and send it again."""
        source = item.sources[0]
        with self._lock:
            again = source in self._rehashed
            self._rehashed.add(source)
        if again:
            detail = getattr(exc, "server_message", "") or str(exc)
            raise ChecksumMismatch(
                f"The server at {self._options.server_url} received different bytes than "
                f"{source} held when it was hashed, even after hashing it again ({detail}). "
                "Is something still writing that file? Save it and submit again.",
                url=self._options.server_url, status=417, server_message=detail,
            ) from exc
        key = self._rehash(source, exc)
        if key == item.key:
            self._pool.put(item)
            return
        others = [s for s in item.sources if s != source]
        if others:
            self._pool.put(UploadItem(item.sha, item.size, others, item.name))
        else:  # the old content is needed by no file any more
            self._tracker.add_upload_work(-1, -item.size)
        self._ledger.queue(key, only_new=False)
        if self._ledger.count_work(key):
            self._tracker.add_upload_work(1, key[1])
        self._pool.put(UploadItem(key[0], key[1], [source], item.name))

    def _rehash(self, source: str, why: ShamanError) -> Key:
        entries = self._contents.entries_of(source)
        self._cache.forget({entry.stat.path for entry in entries})
        stat = FileStat.of(source)
        sha, nbytes = checksums.sha256_file(Path(source), cancel=self._cancel)
        log.info("%s re-hashed after %s: %s/%d", source, type(why).__name__, sha, nbytes)
        for entry in entries:
            self._contents.set_checksum(entry, sha, nbytes, stat)
        if FileStat.of(source) == stat:
            self._cache.put(stat, sha)
        return (sha, nbytes)

    def _finish(self, key: Key, name: str, *, sent_by_us: bool) -> None:
        """One content is on the server: count it as sent by us or by someone else."""
        self._ledger.finish(key, name, sent_by_us=sent_by_us)
        self._tracker.file_uploaded(0 if sent_by_us else key[1])

    def _raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(
                "The submission was cancelled; files already uploaded stay on the server "
                "and will be skipped next time.")
