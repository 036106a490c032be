"""forewarn: synthetic monitoring that tells customers about an outage before they notice it."""

__version__ = "0.1.0"
