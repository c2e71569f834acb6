//! Gateway of Command and Independent Thought (in progress).
