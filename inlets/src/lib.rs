//! Built-in databay inlets.
