"""Webhooks from WhatsApp (Meta) and Shopify: signatures and mapping to our events."""
