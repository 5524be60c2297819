//! Bounds-checked reader and writer helpers for the codecs.
