//! Test images (placeholder; filled in next).
