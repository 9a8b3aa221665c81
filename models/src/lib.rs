//! Protocol models live in tests/.
