"""Errors that carry an actionable message for the person who sent or runs a delivery."""

from __future__ import annotations


class DeliveryRejected(Exception):
    """A file-level fault: the whole delivery is refused and nothing in the warehouse changes.

    ``reason`` is a short code stored in the audit table; the message says which file, what
    is wrong and what to do, because it is read by the data engineer who must fix the feed.
    It never quotes a value from the file, and ``file_name`` is the printable, masked name.
    """

    def __init__(self, reason: str, file_name: str, problem: str, action: str) -> None:
        self.reason = reason
        self.file_name = file_name
        super().__init__(f"{file_name}: {problem}. {action}")


class DeliveryInProgress(DeliveryRejected):
    """The file is still arriving, or changed while it was read: nothing is loaded, and the
    next run plans it again (audit status ``in_progress``, not ``rejected``)."""

    ACTION = (
        "Nothing to do if it was still uploading: the next run loads it once it has stopped "
        "changing. Suppliers should upload under a temporary name (.part) and rename it when "
        "complete."
    )

    def __init__(self, file_name: str, problem: str) -> None:
        super().__init__("in_progress", file_name, problem, self.ACTION)
