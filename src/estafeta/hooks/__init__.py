"""Signed webhooks from telephony and messengers: every call and message becomes intake."""
