"""tracker: a link-tracking redirector and pixel service for WhatsApp marketing."""

__version__ = "0.1.0"
