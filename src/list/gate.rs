//! The gates a verified list must pass before it is applied.
