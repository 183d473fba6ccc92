"""The toolkit's own exceptions: problems a user can act on, with messages that say how."""


class JourneycastError(Exception):
    """Base of every error the ``journeycast`` command reports as one clear line."""
