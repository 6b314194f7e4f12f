"""Property-based fuzzing of everything that takes outside input (hypothesis)."""
