"""The outbox: notifications written in the deciding transaction, delivered afterwards."""
