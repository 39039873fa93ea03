"""Errors of the bag subpackage (reading and writing rosbag2)."""

from __future__ import annotations


class BagError(Exception):
    """Base class of bag reading/writing errors (the message says what and where)."""


class BagNotFoundError(BagError):
    """The bag path does not exist."""


class BagFormatError(BagError):
    """The path is not a readable rosbag2 (no metadata, unknown storage, corrupt file)."""


class EmptyBagError(BagError):
    """The bag holds no messages."""


class BagTopicsError(BagError):
    """The bag lacks the configured topics, or a topic has an unexpected message type."""
