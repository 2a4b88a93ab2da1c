"""The benchmarks' peers: the sparse autoencoder in NumPy, SciPy and PyTorch, without saejax."""
