"""The workflow model: canvas expressions as trees of signatures, chains, groups and chords."""
