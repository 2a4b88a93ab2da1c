"""Language models whose activations sparse autoencoders are trained on: Llama-architecture GGUF
files (``llama.load``), their tokenizers, and their forward pass in JAX."""
