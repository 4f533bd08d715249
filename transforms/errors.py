"""Errors that carry an actionable message for the person who sent or runs a delivery."""

from __future__ import annotations


class DeliveryRejected(Exception):
    """A file-level fault: the whole delivery is refused and nothing in the warehouse changes.

    ``reason`` is a short code stored in the audit table; the message says which file, what
    is wrong and what to do, because it is read by the data engineer who must fix the feed.
    """

    def __init__(self, reason: str, file_name: str, problem: str, action: str) -> None:
        self.reason = reason
        self.file_name = file_name
        super().__init__(f"{file_name}: {problem}. {action}")
