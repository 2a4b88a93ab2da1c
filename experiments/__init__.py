"""saejax's experiments: UFLDL reproductions, benchmarks, and peers in other frameworks."""
