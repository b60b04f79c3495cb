//! The list in force, kept in the state directory.
