//! Test helpers: a throwaway `redis-server` on a free port.
