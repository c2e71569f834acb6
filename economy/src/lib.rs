//! Economy core and service of Command and Independent Thought (in progress).
