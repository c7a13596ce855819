"""The shared kernel: plumbing every app may import and that imports no app (docs/architecture.md)."""
