//! Deterministic simulation core of Command and Independent Thought (in progress).
