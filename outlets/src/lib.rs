//! Built-in databay outlets.
