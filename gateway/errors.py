"""The gateway's error root; the API layer turns these into HTTP answers."""


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""
