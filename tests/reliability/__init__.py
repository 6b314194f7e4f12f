"""Reliability: fault injection against the whole simulated site, and a seeded soak."""
