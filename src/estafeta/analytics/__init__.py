"""Sales-process figures (K1-K12) computed from the history: events, activities, documents and
stage visits, never from current state alone. Definitions: docs/analytics.md."""
