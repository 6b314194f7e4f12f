"""Fuzzing through Home Assistant: flows and actions on a running instance."""
